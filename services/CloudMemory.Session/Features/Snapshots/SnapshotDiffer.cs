using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Session.Features.Snapshots;

/// <summary>
/// What changed between two snapshots: session fields by JSON path (objects walked, arrays and
/// scalars compared whole) and history messages added or removed (compared as role + content).
/// </summary>
public static class SnapshotDiffer
{
    /// <summary>The diff of <paramref name="from"/> → <paramref name="to"/>.</summary>
    public static SnapshotDiff Diff(SessionSnapshot from, SessionSnapshot to)
    {
        var changes = new List<SnapshotChange>();
        Walk("", JsonSerializer.SerializeToElement(from.Session, ContractsJson.Options), JsonSerializer.SerializeToElement(to.Session, ContractsJson.Options), changes);
        var before = from.History.Select(Key).ToList();
        var after = to.History.Select(Key).ToList();
        return new SnapshotDiff(to.ConversationId, from.SnapshotId, to.SnapshotId, changes,
            to.History.Where(m => !Remove(before, Key(m))).ToList(),
            from.History.Where(m => !Remove(after, Key(m))).ToList());
    }

    private static string Key(ChatMessage message) => message.Role + "\u0001" + message.Content;

    // Multiset difference: each message of the other side cancels one equal message.
    private static bool Remove(List<string> pool, string key)
    {
        var index = pool.IndexOf(key);
        if (index < 0)
        {
            return false;
        }
        pool.RemoveAt(index);
        return true;
    }

    private static void Walk(string path, JsonElement? a, JsonElement? b, List<SnapshotChange> changes)
    {
        if (a is { ValueKind: JsonValueKind.Object } left && b is { ValueKind: JsonValueKind.Object } right)
        {
            var names = left.EnumerateObject().Select(p => p.Name).Concat(right.EnumerateObject().Select(p => p.Name)).Distinct(StringComparer.Ordinal);
            foreach (var name in names)
            {
                Walk(path.Length == 0 ? name : path + "." + name,
                    left.TryGetProperty(name, out var l) ? l : null, right.TryGetProperty(name, out var r) ? r : null, changes);
            }
            return;
        }
        if (a is null && b is null)
        {
            return;
        }
        if (a is null || b is null || !JsonElement.DeepEquals(a.Value, b.Value))
        {
            changes.Add(new SnapshotChange(path, a?.Clone(), b?.Clone()));
        }
    }
}
