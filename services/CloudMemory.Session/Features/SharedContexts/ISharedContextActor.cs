using Dapr.Actors;
using Dapr.Actors.Client;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>The <see cref="SharedContextActor"/> as the endpoints call it, through the SDK's <see cref="IActorProxyFactory"/>.</summary>
public interface ISharedContextActor : IActor
{
    /// <summary>Creates the context (an identical retry answers with it).</summary>
    Task<SharedReply<CreateReply>> Create(CreateSharedContextCommand command);

    /// <summary>Deletes the context and its change log; the value is the entries removed, -1 when unknown.</summary>
    Task<SharedReply<long>> Delete(SimpleCommand command);

    /// <summary>A versioned update of fields.</summary>
    Task<SharedReply<SharedContextAck>> Update(UpdateSharedContextCommand command);

    /// <summary>Join (the agent itself) or invite (an admin, for another agent).</summary>
    Task<SharedReply<SharedContextAck>> AddMember(MemberCommand command);

    /// <summary>Leave (the agent itself) or remove (an admin).</summary>
    Task<SharedReply<SharedContextAck>> RemoveMember(MemberCommand command);

    /// <summary>Changes a member's role or fields (an admin).</summary>
    Task<SharedReply<SharedContextAck>> ChangeRole(MemberCommand command);

    /// <summary>Closes the context.</summary>
    Task<SharedReply<SharedContextAck>> Close(SimpleCommand command);

    /// <summary>Rolls the fields back to an earlier version.</summary>
    Task<SharedReply<SharedContextAck>> Rollback(SimpleCommand command);

    /// <summary>Passes the sequential turn on.</summary>
    Task<SharedReply<SharedContextAck>> PassTurn(SimpleCommand command);

    /// <summary>Claims fields for a while.</summary>
    Task<SharedReply<ClaimReply>> Claim(ClaimCommand command);

    /// <summary>Releases a claim.</summary>
    Task<SharedReply<SharedContextAck>> ReleaseClaim(SimpleCommand command);

    /// <summary>Proposes a change (democratic mode).</summary>
    Task<SharedReply<Proposal>> Propose(ProposeCommand command);

    /// <summary>Votes on a proposal.</summary>
    Task<SharedReply<Proposal>> Vote(VoteCommand command);

    /// <summary>Reads a proposal (deciding it when its deadline passed).</summary>
    Task<SharedReply<Proposal>> GetProposal(VoteCommand command);
}

/// <summary>Reaching a shared context's actor.</summary>
public static class SharedContextActors
{
    /// <summary>The typed proxy of the actor of shared context <paramref name="id"/> in <paramref name="tenantId"/>.</summary>
    public static ISharedContextActor SharedContext(this IActorProxyFactory actors, string tenantId, string id) =>
        actors.CreateActorProxy<ISharedContextActor>(new ActorId(SharedContextActor.ActorId(tenantId, id)), nameof(SharedContextActor));
}
