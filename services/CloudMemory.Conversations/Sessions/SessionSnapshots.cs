using CloudMemory.BuildingBlocks.Actors;
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
public sealed class SessionSnapshots(IStateStore stateStore, IActorInvoker actors, IEnumerable<ActorRegistration> registrations)
{
    private readonly bool _actorIsLocal = registrations.Any(r => r.TypeName == ConversationActorContract.ActorType);

    /// <summary>The session and its ETag, or the actor's error reply (404 for an unknown conversation).</summary>
    public async Task<ActorReply<SessionReply>> GetAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default)
    {
        if (_actorIsLocal && await stateStore.GetJsonAsync<SessionValue>(SessionKeys.For(tenantId, conversationId), cancellationToken) is { } stored)
        {
            return new(new SessionReply(stored.Value, SessionKeys.ETag(stored.Value.Meta.Version)));
        }
        return await actors.InvokeMethodAsync<GetSessionCommand, ActorReply<SessionReply>>(ConversationActorContract.ActorType,
            ConversationActorContract.ActorId(tenantId, conversationId), "Get", new GetSessionCommand(tenantId, conversationId), cancellationToken);
    }
}
