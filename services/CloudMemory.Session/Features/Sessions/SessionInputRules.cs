using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Session.Features.Sessions;

/// <summary>
/// What a SetShortMemory document must satisfy before it reaches the actor: no null where the
/// model has a value, ids through the same rule as everywhere else, and bounded lists (the
/// allergy merge and every later read stay cheap).
/// </summary>
public static class SessionInputRules
{
    /// <summary>Most entries in any list of the user snapshot.</summary>
    public const int MaxListItems = 1000;

    /// <summary>Longest entry of a user snapshot list, in characters.</summary>
    public const int MaxItemLength = 1000;

    /// <summary>Throws a 400 problem naming the first field that breaks a rule.</summary>
    public static void Validate(SessionValue session)
    {
        var meta = Required(session.Meta, "meta");
        var flow = Required(session.FlowContext, "flowContext");
        var messages = Required(session.MessageContext, "messageContext");
        var state = Required(session.GlobalState, "globalState");
        var user = Required(session.UserSnapshot, "userSnapshot");

        Required(meta.ConversationId, "meta.conversationId");
        if (Required(meta.UserId, "meta.userId").Length > 0)
        {
            Ids.Require(meta.UserId, "userId");
        }
        Required(flow.CurrentAgentKey, "flowContext.currentAgentKey");
        Required(flow.LastBotMessage, "flowContext.lastBotMessage");
        Required(messages.Summary, "messageContext.summary");
        Required(messages.CheckpointMessageId, "messageContext.checkpointMessageId");
        foreach (var message in Required(messages.WindowMessages, "messageContext.windowMessages"))
        {
            Required(Required(message, "messageContext.windowMessages[]").Content, "messageContext.windowMessages[].content");
            Required(message.Role, "messageContext.windowMessages[].role");
        }
        Required(state.CurrentIntent, "globalState.currentIntent");
        Required(state.AgentSlots, "globalState.agentSlots");
        foreach (var agent in state.AgentSlots.Keys)
        {
            Ids.Require(agent, "agentCode");
        }
        foreach (var entities in new[] { state.Shared, state.Entities })
        {
            if (entities is not null)
            {
                Required(entities.SymptomSummary, "globalState.entities.symptomSummary");
                Required(entities.Disease, "globalState.entities.disease");
                Required(entities.TargetDept, "globalState.entities.targetDept");
                Required(entities.TargetDoctor, "globalState.entities.targetDoctor");
                Required(entities.IntentTag, "globalState.entities.intentTag");
            }
        }
        if (state.PendingAction is { } pending)
        {
            Required(pending.ToolName, "globalState.pendingAction.toolName");
            Required(pending.ToolParams, "globalState.pendingAction.toolParams");
            Required(pending.Reason, "globalState.pendingAction.reason");
        }

        if (Required(user.UserId, "userSnapshot.userId").Length > 0)
        {
            Ids.Require(user.UserId, "userId");
        }
        Required(user.Name, "userSnapshot.name");
        List("userSnapshot.allergies", user.Allergies);
        List("userSnapshot.chronicDiseases", user.ChronicDiseases);
        List("userSnapshot.surgeryHistory", user.SurgeryHistory);
        List("userSnapshot.preferences", user.Preferences);
    }

    private static void List(string name, List<string>? items)
    {
        Required(items, name);
        if (items!.Count > MaxListItems)
        {
            throw new ProblemException(400, "list-too-long", $"'{name}' has {items.Count} entries; at most {MaxListItems} are allowed.");
        }
        foreach (var item in items)
        {
            if (Required(item, name + "[]").Length > MaxItemLength)
            {
                throw new ProblemException(400, "list-item-too-long", $"An entry of '{name}' exceeds {MaxItemLength} characters.");
            }
        }
    }

    // The JSON binder sets null where the document says null, whatever the property's annotation.
    private static T Required<T>(T? value, string name) where T : class =>
        value ?? throw new ProblemException(400, "null-field", $"'{name}' must not be null.");
}
