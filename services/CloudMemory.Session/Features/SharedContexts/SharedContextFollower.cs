using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>
/// The ordered change stream of one shared context from a sequence number on: first what the
/// store holds after it, then live changes. Seq numbers are contiguous per context, so a follower
/// that sees seq n+2 after n knows it missed one and reads it from the store; duplicates (a change
/// seen both live and through pub/sub) are skipped. A quiet stream re-reads the store every
/// <c>poll</c>, so a change whose live notification was lost still arrives.
/// </summary>
public static class SharedContextFollower
{
    /// <summary>Changes after <paramref name="afterSeq"/>, in seq order, until cancelled (or the context is gone).</summary>
    public static async IAsyncEnumerable<SharedContextChange> FollowAsync(SharedContextStore store, SharedContextFeed feed, string tenantId, string id,
        long afterSeq, TimeSpan poll, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var live = Channel.CreateUnbounded<SharedContextChanged>(new UnboundedChannelOptions { SingleReader = true });
        using var subscription = feed.Subscribe(tenantId, id, e => live.Writer.TryWrite(e));
        var last = afterSeq;
        var pull = true; // subscribe first, then catch up: nothing falls between the two
        while (!cancellationToken.IsCancellationRequested)
        {
            if (pull)
            {
                var doc = await store.GetAsync(tenantId, id, cancellationToken);
                if (doc is null)
                {
                    yield break;
                }
                if (doc.Seq > last)
                {
                    foreach (var change in await store.ChangesAsync(tenantId, id, last + 1, doc.Seq, cancellationToken))
                    {
                        yield return change;
                        last = change.Seq;
                    }
                }
                pull = false;
            }
            var next = await NextAsync(live.Reader, poll, cancellationToken);
            if (next is null)
            {
                pull = true; // quiet for a while: look in the store
            }
            else if (next.Seq == last + 1)
            {
                yield return ToChange(next);
                last = next.Seq;
            }
            else if (next.Seq > last + 1)
            {
                pull = true; // a gap: the missing entries are in the store
            }
        }
    }

    /// <summary>The change-log entry an event carries.</summary>
    public static SharedContextChange ToChange(SharedContextChanged e) => new()
    {
        Seq = e.Seq,
        Version = e.Version,
        Kind = e.Kind,
        Author = e.Author,
        StepId = e.StepId,
        TraceId = e.TraceId,
        AtMs = e.OccurredAtMs,
        Diff = e.Diff is null ? null : new Dictionary<string, FieldDiff>(e.Diff, StringComparer.Ordinal),
        Detail = e.Detail,
    };

    private static async Task<SharedContextChanged?> NextAsync(ChannelReader<SharedContextChanged> reader, TimeSpan poll, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (reader.TryRead(out var next))
            {
                return next;
            }
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(poll);
            try
            {
                await reader.WaitToReadAsync(wait.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return null;
            }
        }
    }
}
