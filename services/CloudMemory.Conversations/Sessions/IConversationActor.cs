using CloudMemory.Contracts.Sessions;
using Dapr.Actors;
using Dapr.Actors.Client;

namespace CloudMemory.Conversations.Sessions;

/// <summary>
/// The <c>ConversationActor</c> as its callers see it (the session app's endpoints and checkpoints,
/// the context app's session reads): one actor per tenant and conversation, reached through the
/// SDK's <see cref="IActorProxyFactory"/> in both runtimes.
/// </summary>
public interface IConversationActor : IActor
{
    /// <summary>CreateShortMemory: idempotent.</summary>
    Task<ActorReply<SessionReply>> Create(CreateSessionCommand command);

    /// <summary>GetShortMemory: rebuilt from the log after expiry.</summary>
    Task<ActorReply<SessionReply>> Get(GetSessionCommand command);

    /// <summary>SetShortMemory under optimistic concurrency (If-Match).</summary>
    Task<ActorReply<SessionReply>> Set(SetSessionCommand command, CancellationToken cancellationToken);

    /// <summary>Writes the calling agent's private slot.</summary>
    Task<ActorReply<SessionReply>> WriteAgentSlot(WriteAgentSlotCommand command);

    /// <summary>WriteTurn: appends to the log and updates the session.</summary>
    Task<ActorReply<WriteTurnResult>> WriteTurn(WriteTurnCommand command);

    /// <summary>Writes a checkpoint (summary already produced) to the log.</summary>
    Task<ActorReply<CheckpointResult>> ApplyCheckpoint(ApplyCheckpointCommand command);

    /// <summary>Deletes the conversation's session value and whole log, in the actor's turn.</summary>
    Task<ActorReply<ConversationDeleted>> Delete(DeleteConversationCommand command);

    /// <summary>Takes a snapshot of the session as it is now.</summary>
    Task<ActorReply<SnapshotHandle>> CreateSnapshot(CreateSnapshotCommand command);

    /// <summary>The conversation's snapshots, newest first.</summary>
    Task<ActorReply<SnapshotList>> ListSnapshots(ListSnapshotsCommand command);

    /// <summary>One snapshot, decompressed.</summary>
    Task<ActorReply<SessionSnapshot>> GetSnapshot(GetSnapshotCommand command);

    /// <summary>Restores the session as a snapshot has it, with a new version.</summary>
    Task<ActorReply<RestoreResult>> RestoreSnapshot(RestoreSnapshotCommand command);
}

/// <summary>Delete a conversation's short-term memory: the session value and the whole log.</summary>
public sealed record DeleteConversationCommand(string TenantId, string ConversationId);

/// <summary>What deleting a conversation removed; <see cref="Found"/> is false when nothing was there.</summary>
public sealed record ConversationDeleted(bool Found, string UserId, int Messages, int Checkpoints, bool Session);


/// <summary>Reaching a conversation's actor.</summary>
public static class ConversationActors
{
    /// <summary>The typed proxy of the actor of <paramref name="conversationId"/> in <paramref name="tenantId"/>.</summary>
    public static IConversationActor Conversation(this IActorProxyFactory actors, string tenantId, string conversationId) =>
        actors.CreateActorProxy<IConversationActor>(new ActorId(ConversationActorContract.ActorId(tenantId, conversationId)), ConversationActorContract.ActorType);
}
