using CloudMemory.BuildingBlocks.Actors;
using Dapr.Actors.Client;
using CloudMemory.BuildingBlocks.State;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Conversations.Sessions;

/// <summary>
/// Reads a session for callers that do not change it. Where the conversation actor is hosted in
/// this process (the embedded host, the session app), the state store is read directly: a state
/// read is an atomic snapshot and every write goes through the actor before it answers, so
/// nothing is lost by skipping the actor's mailbox — and reads no longer queue behind writes or
/// pay for a serialization round trip. Elsewhere (the context app on Dapr), and whenever the
/// entry is missing and must be rebuilt from the log, the actor answers.
/// </summary>
/// <remarks>
/// Parsed sessions are kept per key and reused while the stored bytes are unchanged (the store is
/// still read every time and compared byte for byte, so a reader never sees an old version — ETags
/// alone could repeat after an expiry): the returned value is shared and must be treated as read-only. At most <see cref="CacheCapacity"/> sessions are kept.
/// </remarks>
public sealed class SessionSnapshots(IStateStore stateStore, IActorProxyFactory actors, ActorTypes hosted)
{
    /// <summary>Parsed sessions kept for reuse.</summary>
    public const int CacheCapacity = 4096;

    private readonly bool _actorIsLocal = hosted.IsHosted(ConversationActorContract.ActorType);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (ReadOnlyMemory<byte> Bytes, SessionValue Session)> _parsed = new(StringComparer.Ordinal);

    /// <summary>The session and its ETag, or the actor's error reply (404 for an unknown conversation).</summary>
    public async Task<ActorReply<SessionReply>> GetAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        if (_actorIsLocal)
        {
            var key = SessionKeys.For(tenantId, conversationId);
            var entry = await stateStore.GetAsync(key, StateConsistency.Strong, cancellationToken);
            if (entry is not null)
            {
                if (!_parsed.TryGetValue(key, out var cached) || !cached.Bytes.Span.SequenceEqual(entry.Value.Span))
                {
                    cached = (entry.Value, System.Text.Json.JsonSerializer.Deserialize<SessionValue>(entry.Value.Span, Contracts.ContractsJson.Options)!);
                    if (_parsed.Count >= CacheCapacity)
                    {
                        _parsed.Clear(); // crude but bounded; the hot conversations come back on their next read
                    }
                    _parsed[key] = cached;
                }
                return new(new SessionReply(cached.Session, SessionKeys.ETag(cached.Session.Meta.Version)));
            }
            _parsed.TryRemove(key, out _);
        }
        return await actors.Conversation(tenantId, conversationId).Get(new GetSessionCommand(tenantId, conversationId));
    }
}
