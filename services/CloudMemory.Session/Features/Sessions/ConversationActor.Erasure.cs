using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Sessions;

namespace CloudMemory.Session.Features.Sessions;

public sealed partial class ConversationActor
{
    /// <summary>
    /// Removes the conversation (session value, log header, turns, checkpoints, durable state) in
    /// this actor's turn, so no write of the same conversation interleaves. A later write starts a
    /// new conversation under the same id.
    /// </summary>
    public async Task<ActorReply<ConversationDeleted>> Delete(DeleteConversationCommand command)
    {
        var key = SessionKeys.For(command.TenantId, command.ConversationId);
        var session = await stateStore.GetAsync(key);
        // The session value goes first: were the process to stop in between, the log still holds the
        // conversation (a read rebuilds it) and a retried delete finishes the job.
        if (session is not null)
        {
            await stateStore.DeleteAsync(key);
        }
        var deleted = await log.DeleteConversationAsync(command.TenantId, command.ConversationId);
        return new(new ConversationDeleted(deleted is not null || session is not null, deleted?.UserId ?? "", deleted?.Messages ?? 0, deleted?.Checkpoints ?? 0, session is not null));
    }
}
