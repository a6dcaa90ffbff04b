using System.Text.Json;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Session.Features.Sessions;

/// <summary>
/// How a client's SetShortMemory document is merged into the stored session. The server keeps
/// what only it may change (identity, counters, message context, other agents' slots) and the
/// safety rules of the seed: Shared is never nulled by accident, allergies are never dropped.
/// </summary>
public static class SessionMerge
{
    /// <summary>Returns the merged session and the names of the parts that changed.</summary>
    public static (SessionValue Merged, List<string> Changed) Apply(SessionValue current, SessionValue incoming, string? agentId)
    {
        var merged = current.DeepCopy();
        var changed = new List<string>();

        if (!string.IsNullOrEmpty(incoming.Meta.UserId) && incoming.Meta.UserId != merged.Meta.UserId)
        {
            merged.Meta.UserId = incoming.Meta.UserId;
            changed.Add("meta.userId");
        }
        if (incoming.FlowContext.CurrentAgentKey != merged.FlowContext.CurrentAgentKey || incoming.FlowContext.LastBotMessage != merged.FlowContext.LastBotMessage)
        {
            merged.FlowContext.CurrentAgentKey = incoming.FlowContext.CurrentAgentKey;
            merged.FlowContext.LastBotMessage = incoming.FlowContext.LastBotMessage;
            changed.Add("flowContext");
        }

        MergeEntities(current.GlobalState, incoming.GlobalState, merged.GlobalState, changed);

        if (incoming.GlobalState.CurrentIntent != merged.GlobalState.CurrentIntent)
        {
            merged.GlobalState.CurrentIntent = incoming.GlobalState.CurrentIntent;
            changed.Add("globalState.currentIntent");
        }
        if (!JsonEquals(incoming.GlobalState.PendingAction, merged.GlobalState.PendingAction))
        {
            merged.GlobalState.PendingAction = incoming.GlobalState.PendingAction;
            changed.Add("globalState.pendingAction");
        }
        // Agent slots: only the calling agent's own slot may change through Set.
        if (agentId is not null)
        {
            var hasIncoming = incoming.GlobalState.AgentSlots.TryGetValue(agentId, out var slot);
            var hasCurrent = merged.GlobalState.AgentSlots.TryGetValue(agentId, out var old);
            if (hasIncoming && (!hasCurrent || !JsonEquals(slot, old)))
            {
                merged.GlobalState.AgentSlots[agentId] = slot.Clone();
                changed.Add($"globalState.agentSlots.{agentId}");
            }
        }

        var profile = incoming.UserSnapshot;
        var mergedProfile = merged.UserSnapshot;
        var allergies = Union(mergedProfile.Allergies, profile.Allergies);
        if (!JsonEquals(profile with { Allergies = allergies, UserId = mergedProfile.UserId.Length > 0 && profile.UserId.Length == 0 ? mergedProfile.UserId : profile.UserId }, mergedProfile))
        {
            merged.UserSnapshot = profile with
            {
                UserId = profile.UserId.Length == 0 ? mergedProfile.UserId : profile.UserId,
                Allergies = allergies,
            };
            changed.Add("userSnapshot");
        }
        return (merged, changed);
    }

    /// <summary>Allergies are only ever added through Set: a union that keeps the stored order.</summary>
    public static List<string> Union(List<string> stored, List<string> incoming)
    {
        // Linear: a set of what is kept answers "already there?" in O(1).
        var result = new List<string>(stored);
        var seen = new HashSet<string>(stored, StringComparer.OrdinalIgnoreCase);
        foreach (var a in incoming)
        {
            if (!string.IsNullOrWhiteSpace(a) && !seen.Contains(a) && seen.Add(a.Trim()))
            {
                result.Add(a.Trim());
            }
        }
        return result;
    }

    // Shared (old name) and Entities (new name) always hold the same value. A client that sends
    // only one of them, or null for one, changes both through the one it sent; null never clears.
    private static void MergeEntities(GlobalState current, GlobalState incoming, GlobalState merged, List<string> changed)
    {
        var stored = current.Entities ?? current.Shared;
        var sharedChanged = incoming.Shared is not null && !JsonEquals(incoming.Shared, stored);
        var entitiesChanged = incoming.Entities is not null && !JsonEquals(incoming.Entities, stored);
        var next = entitiesChanged ? incoming.Entities : sharedChanged ? incoming.Shared : stored;
        merged.Shared = next is null ? null : next with { };
        merged.Entities = next is null ? null : next with { };
        if (sharedChanged || entitiesChanged)
        {
            changed.Add("globalState.entities");
        }
    }

    private static bool JsonEquals<T>(T a, T b) =>
        JsonSerializer.Serialize(a, Contracts.ContractsJson.Options) == JsonSerializer.Serialize(b, Contracts.ContractsJson.Options);
}
