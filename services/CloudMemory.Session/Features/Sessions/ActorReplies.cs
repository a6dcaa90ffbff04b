using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Session.Features.Sessions;

/// <summary>Turning an actor's reply into the HTTP answer.</summary>
public static class ActorReplies
{
    /// <summary>The reply's value, or its refusal as a problem (status, code, detail).</summary>
    public static T ValueOrProblem<T>(this ActorReply<T> reply) =>
        reply.IsSuccess ? reply.Value! : throw new ProblemException(reply.Status, reply.Code!, reply.Detail ?? reply.Code!);
}
