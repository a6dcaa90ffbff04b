using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.PubSub;
using CloudMemory.Contracts;
using Dapr.Actors.Runtime;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>The reply of a shared-context actor method: a value, or a refusal with status, code and details (a 409 carries the current state).</summary>
public sealed record SharedReply<T>(T? Value, int Status = 200, string? Code = null, string? Detail = null, Dictionary<string, JsonElement>? Extensions = null)
{
    /// <summary>True when <see cref="Value"/> is set.</summary>
    public bool IsSuccess => Code is null;
}

/// <summary>Commands of <see cref="SharedContextActor"/> (tenant, context and calling agent in each).</summary>
public sealed record CreateSharedContextCommand(string TenantId, string Id, string AgentId, CreateSharedContextRequest Request, Dictionary<string, JsonElement>? ConversationFields, string Hash);

/// <inheritdoc cref="CreateSharedContextCommand"/>
public sealed record UpdateSharedContextCommand(string TenantId, string Id, string AgentId, UpdateSharedContextRequest Request);

/// <inheritdoc cref="CreateSharedContextCommand"/>
public sealed record MemberCommand(string TenantId, string Id, string AgentId, string Target, string? Role, List<string>? Fields);

/// <inheritdoc cref="CreateSharedContextCommand"/>
public sealed record SimpleCommand(string TenantId, string Id, string AgentId, string? Target = null, string? StepId = null, long? Number = null, string? TraceId = null);

/// <inheritdoc cref="CreateSharedContextCommand"/>
public sealed record ClaimCommand(string TenantId, string Id, string AgentId, List<string> Fields, int TtlSeconds);

/// <inheritdoc cref="CreateSharedContextCommand"/>
public sealed record ProposeCommand(string TenantId, string Id, string AgentId, ProposalRequest Request);

/// <inheritdoc cref="CreateSharedContextCommand"/>
public sealed record VoteCommand(string TenantId, string Id, string AgentId, string ProposalId, bool Approve);

/// <summary>Answer of create: whether this call created it.</summary>
public sealed record CreateReply(SharedContextAck Ack, bool Created);

/// <summary>
/// One actor per tenant and shared context: every change runs here, one at a time, so concurrent
/// agents are ordered, nothing is lost, and each accepted change gets the next version and seq. The
/// document and the change-log entries of a call are committed in one state transaction before the
/// change is published, so subscribers never see a change that was not stored. Democratic
/// proposals are decided at their deadline by a reminder (and by any call after the deadline).
/// </summary>
public sealed class SharedContextActor(ActorHost host, SharedContextStore store, IEventPublisher publisher, SharedContextFeed feed, TimeProvider time,
    ILogger<SharedContextActor> logger) : Actor(host), ISharedContextActor, IRemindable
{
    // The actor id as text ("{tenant}~{context}").
    private new string Id => base.Id.GetId();

    /// <summary>Most members of one context.</summary>
    public const int MaxMembers = 256;

    /// <summary>Most fields of one context.</summary>
    public const int MaxFields = 256;

    /// <summary>Decided proposals kept in the document (the change log keeps all).</summary>
    public const int DecidedProposalsKept = 64;

    /// <summary>Recent change ids kept for idempotent retries.</summary>
    public const int RecentChangesKept = 256;

    // The document of this context while the actor is active (only this actor writes it); dropped
    // whenever a call fails, so a half-applied change is never kept.
    private SharedContextDocument? _doc;

    /// <summary>The actor id of a shared context.</summary>
    public static string ActorId(string tenantId, string id) => tenantId + "~" + id;

    /// <summary>Creates the context (an identical retry answers with it).</summary>
    public Task<SharedReply<CreateReply>> Create(CreateSharedContextCommand command) => Guarded(async () =>
    {
        var existing = await LoadAsync(command.TenantId, command.Id);
        if (existing is not null)
        {
            return existing.CreateHash == command.Hash && existing.Owner == command.AgentId
                ? new SharedReply<CreateReply>(new(new(existing.Id, 1, 1), Created: false))
                : Fail<CreateReply>(409, "shared-context-exists", $"Shared context '{command.Id}' already exists.");
        }
        var doc = SharedContextFactory.Build(command, time.GetUtcNow());
        var entry = new SharedContextChange
        {
            Seq = 1,
            Version = 1,
            Kind = "created",
            Author = command.AgentId,
            AtMs = time.GetUtcNow().ToUnixTimeMilliseconds(),
            Diff = doc.Fields.ToDictionary(f => f.Key, f => new FieldDiff("create", JsonSerializer.SerializeToElement<object?>(null), f.Value.Value), StringComparer.Ordinal),
            Detail = Detail(new { mode = doc.Mode, members = doc.Members.Select(m => new { m.AgentId, m.Role, m.Status }) }),
        };
        doc.Seq = 1;
        if (doc.Links.ConversationId is { } conversationId)
        {
            // Linked first: erasing the conversation then finds the context, even if the commit fails after it.
            await store.LinkAsync(doc.TenantId, conversationId, doc.Id);
        }
        // Indexed first too: the tenant's listing finds every context that exists.
        await store.IndexAsync(doc.TenantId, doc.Id);
        await CommitAsync(doc, [entry]);
        return new SharedReply<CreateReply>(new(new(doc.Id, doc.Version, doc.Seq), Created: true));
    });

    /// <summary>
    /// Deletes the context and its change log (erasure of the conversation it was created from);
    /// the value is the number of change-log entries removed, -1 when there was no such context.
    /// </summary>
    public Task<SharedReply<long>> Delete(SimpleCommand command) => Guarded(async () =>
    {
        var doc = await LoadAsync(command.TenantId, command.Id);
        if (doc is null)
        {
            return new SharedReply<long>(-1);
        }
        foreach (var pending in doc.Proposals.Where(p => p.Status == "pending"))
        {
            await UnregisterQuietlyAsync(pending.ProposalId);
        }
        _doc = null;
        await store.DeleteAsync(doc);
        await store.UnindexAsync(doc.TenantId, doc.Id);
        return new SharedReply<long>(doc.Seq);
    });

    /// <summary>A versioned update of fields.</summary>
    public Task<SharedReply<SharedContextAck>> Update(UpdateSharedContextCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<SharedContextAck>(command.TenantId, command.Id, command.AgentId);
        if (refusal is not null)
        {
            return refusal;
        }
        var request = command.Request;
        // Change ids are the writer's own: another agent's id never answers for this one.
        var changeKey = request.ChangeId is null ? null : command.AgentId + "/" + request.ChangeId;
        if (changeKey is not null && doc!.Recent.Find(r => r.ChangeId == changeKey) is { } applied)
        {
            return Ok(new SharedContextAck(doc.Id, applied.Version, applied.Seq)); // a retry: applied once already
        }
        var changes = request.Changes!;
        if (WriteRefusal<SharedContextAck>(doc!, command.AgentId, changes.Keys) is { } forbidden)
        {
            return forbidden;
        }
        if (ModeRefusal(doc!, command.AgentId, changes.Keys) is { } notNow)
        {
            return notNow;
        }
        if (request.BaseVersion > doc!.Version)
        {
            return Fail<SharedContextAck>(400, "invalid-baseVersion", $"baseVersion {request.BaseVersion} is ahead of the current version {doc.Version}.");
        }
        if (ApplyChanges(doc, changes, request.BaseVersion!.Value) is { } conflict)
        {
            return conflict;
        }
        entries.Add(NewEntry(doc, "updated", command.AgentId, request.StepId, _lastDiff, null, request.TraceId));
        if (changeKey is not null)
        {
            doc.Recent.Add(new AppliedChange(changeKey, doc.Version, doc.Seq));
            if (doc.Recent.Count > RecentChangesKept)
            {
                doc.Recent.RemoveAt(0);
            }
        }
        var ack = new SharedContextAck(doc.Id, doc.Version, doc.Seq);
        if (request.PassTurn && doc.Mode == "sequential")
        {
            PassTurn(doc, command.AgentId, entries);
        }
        await CommitAsync(doc, entries);
        return Ok(ack);
    });

    /// <summary>Join (the agent itself) or invite (an admin, for another agent).</summary>
    public Task<SharedReply<SharedContextAck>> AddMember(MemberCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<SharedContextAck>(command.TenantId, command.Id, command.AgentId, mustBeMember: false);
        if (refusal is not null)
        {
            return refusal;
        }
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var existing = doc!.Members.Find(m => m.AgentId == command.Target);
        var role = command.Role ?? "write";
        string kind;
        if (command.Target == command.AgentId)
        {
            if (existing is { Status: "active" })
            {
                return Ok(new SharedContextAck(doc.Id, doc.Version, doc.Seq)); // already in: joining again changes nothing
            }
            if (existing is { Status: "invited" })
            {
                existing.Status = "active"; // accepts the invitation with the role it was given
                existing.Since = now;
            }
            else
            {
                var allowed = doc.Policy.Join switch
                {
                    "tenant" => true,
                    "listed" => doc.Policy.Agents.Contains(command.AgentId),
                    _ => false,
                };
                if (!allowed)
                {
                    return Fail<SharedContextAck>(403, doc.Policy.Join == "invitation" ? "invitation-required" : "join-forbidden",
                        $"Agent '{command.AgentId}' may not join shared context '{doc.Id}' (policy '{doc.Policy.Join}').");
                }
                if (Shared.Rank(role) > Shared.Rank(doc.Policy.MaxJoinRole))
                {
                    return Fail<SharedContextAck>(403, "role-not-allowed", $"Joining gives at most the '{doc.Policy.MaxJoinRole}' role; an admin can raise it.");
                }
                if (doc.Members.Count >= MaxMembers)
                {
                    return Fail<SharedContextAck>(409, "too-many-members", $"A shared context has at most {MaxMembers} members.");
                }
                existing = new SharedMember { AgentId = command.AgentId, Role = role, Fields = command.Fields, Status = "active", Since = now };
                doc.Members.Add(existing);
            }
            kind = "member-joined";
        }
        else
        {
            if (doc.ActiveMember(command.AgentId)?.Role != "admin")
            {
                return Fail<SharedContextAck>(403, "admin-required", $"Only an admin may invite; '{command.AgentId}' is not one.");
            }
            if (existing is { Status: "active" })
            {
                return Fail<SharedContextAck>(409, "already-member", $"'{command.Target}' is already a member; change its role instead.");
            }
            if (existing is null && doc.Members.Count >= MaxMembers)
            {
                return Fail<SharedContextAck>(409, "too-many-members", $"A shared context has at most {MaxMembers} members.");
            }
            existing ??= new SharedMember { AgentId = command.Target };
            if (!doc.Members.Contains(existing))
            {
                doc.Members.Add(existing);
            }
            existing.Role = role;
            existing.Fields = command.Fields;
            existing.Since = now;
            // Under the invitation policy the invited agent must accept by joining; otherwise it is in.
            existing.Status = doc.Policy.Join == "invitation" ? "invited" : "active";
            kind = existing.Status == "invited" ? "member-invited" : "member-joined";
        }
        if (existing.Status == "active" && doc.Mode == "sequential" && Shared.Rank(existing.Role) >= 1 && !doc.TurnOrder.Contains(existing.AgentId))
        {
            doc.TurnOrder.Add(existing.AgentId);
            doc.TurnHolder ??= existing.AgentId;
        }
        entries.Add(NewEntry(doc, kind, command.AgentId, null, null, Detail(new { agentId = existing.AgentId, role = existing.Role, fields = existing.Fields })));
        await CommitAsync(doc, entries);
        return Ok(new SharedContextAck(doc.Id, doc.Version, doc.Seq));
    });

    /// <summary>Leave (the agent itself) or remove (an admin).</summary>
    public Task<SharedReply<SharedContextAck>> RemoveMember(MemberCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<SharedContextAck>(command.TenantId, command.Id, command.AgentId, allowClosed: true);
        if (refusal is not null)
        {
            return refusal;
        }
        var self = command.Target == command.AgentId;
        if (!self && doc!.ActiveMember(command.AgentId)?.Role != "admin")
        {
            return Fail<SharedContextAck>(403, "admin-required", $"Only an admin may remove another member; '{command.AgentId}' is not one.");
        }
        var member = doc!.Members.Find(m => m.AgentId == command.Target);
        if (member is null)
        {
            return Fail<SharedContextAck>(404, "member-not-found", $"'{command.Target}' is not a member of '{doc.Id}'.");
        }
        if (member.Role == "admin" && member.Status == "active" && doc.Members.Count(m => m.Role == "admin" && m.Status == "active") == 1)
        {
            return Fail<SharedContextAck>(409, "last-admin", $"'{command.Target}' is the last admin; make another member admin first.");
        }
        doc.Members.Remove(member);
        doc.Claims.RemoveAll(c => c.AgentId == member.AgentId);
        if (doc.Mode == "sequential")
        {
            if (doc.TurnHolder == member.AgentId)
            {
                PassTurn(doc, member.AgentId, entries);
            }
            doc.TurnOrder.Remove(member.AgentId);
            if (doc.TurnHolder == member.AgentId)
            {
                doc.TurnHolder = doc.TurnOrder.FirstOrDefault();
            }
        }
        entries.Add(NewEntry(doc, self ? "member-left" : "member-removed", command.AgentId, null, null, Detail(new { agentId = member.AgentId })));
        if (doc.Mode == "democratic")
        {
            DecideReady(doc, entries); // fewer voters can settle a pending vote
        }
        await CommitAsync(doc, entries);
        return Ok(new SharedContextAck(doc.Id, doc.Version, doc.Seq));
    });

    /// <summary>Changes a member's role and field grants (admin).</summary>
    public Task<SharedReply<SharedContextAck>> ChangeRole(MemberCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<SharedContextAck>(command.TenantId, command.Id, command.AgentId);
        if (refusal is not null)
        {
            return refusal;
        }
        if (doc!.ActiveMember(command.AgentId)?.Role != "admin")
        {
            return Fail<SharedContextAck>(403, "admin-required", $"Only an admin may change roles; '{command.AgentId}' is not one.");
        }
        var member = doc.Members.Find(m => m.AgentId == command.Target);
        if (member is null)
        {
            return Fail<SharedContextAck>(404, "member-not-found", $"'{command.Target}' is not a member of '{doc.Id}'.");
        }
        var role = command.Role!;
        if (member.Role == "admin" && role != "admin" && doc.Members.Count(m => m.Role == "admin" && m.Status == "active") == 1)
        {
            return Fail<SharedContextAck>(409, "last-admin", $"'{command.Target}' is the last admin.");
        }
        var before = member.Role;
        member.Role = role;
        member.Fields = command.Fields;
        if (doc.Mode == "sequential" && Shared.Rank(role) >= 1 && member.Status == "active" && !doc.TurnOrder.Contains(member.AgentId))
        {
            doc.TurnOrder.Add(member.AgentId);
            doc.TurnHolder ??= member.AgentId;
        }
        entries.Add(NewEntry(doc, "role-changed", command.AgentId, null, null, Detail(new { agentId = member.AgentId, from = before, to = role, fields = member.Fields })));
        await CommitAsync(doc, entries);
        return Ok(new SharedContextAck(doc.Id, doc.Version, doc.Seq));
    });

    /// <summary>Closes the context (admin): it stays readable, accepts no more changes.</summary>
    public Task<SharedReply<SharedContextAck>> Close(SimpleCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<SharedContextAck>(command.TenantId, command.Id, command.AgentId, allowClosed: true);
        if (refusal is not null)
        {
            return refusal;
        }
        if (doc!.ActiveMember(command.AgentId)?.Role != "admin")
        {
            return Fail<SharedContextAck>(403, "admin-required", $"Only an admin may close; '{command.AgentId}' is not one.");
        }
        if (doc.Status != "closed")
        {
            doc.Status = "closed";
            foreach (var pending in doc.Proposals.Where(p => p.Status == "pending"))
            {
                pending.Status = "rejected";
                pending.Reason = "context-closed";
                pending.DecidedAtMs = time.GetUtcNow().ToUnixTimeMilliseconds();
            }
            entries.Add(NewEntry(doc, "closed", command.AgentId, command.StepId, null, null));
            await CommitAsync(doc, entries);
        }
        return Ok(new SharedContextAck(doc.Id, doc.Version, doc.Seq));
    });

    /// <summary>Sets every field back to its value at an earlier version, as a new version (admin).</summary>
    public Task<SharedReply<SharedContextAck>> Rollback(SimpleCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<SharedContextAck>(command.TenantId, command.Id, command.AgentId);
        if (refusal is not null)
        {
            return refusal;
        }
        if (doc!.ActiveMember(command.AgentId)?.Role != "admin")
        {
            return Fail<SharedContextAck>(403, "admin-required", $"Only an admin may roll back; '{command.AgentId}' is not one.");
        }
        var target = command.Number!.Value;
        if (target < 1 || target > doc.Version)
        {
            return Fail<SharedContextAck>(400, "invalid-toVersion", $"toVersion must be between 1 and {doc.Version}.");
        }
        var past = await store.FieldsAtAsync(doc, target);
        var version = doc.Version + 1;
        var diff = new Dictionary<string, FieldDiff>(StringComparer.Ordinal);
        foreach (var (name, value) in past)
        {
            var field = doc.Fields[name];
            if (!JsonElement.DeepEquals(field.Value, value))
            {
                diff[name] = new FieldDiff("rollback", field.Value, value);
                doc.Fields[name] = FieldRules.Restore(field, value, version);
            }
        }
        doc.Version = version;
        entries.Add(NewEntry(doc, "rollback", command.AgentId, command.StepId, diff, Detail(new { toVersion = target }), command.TraceId));
        await CommitAsync(doc, entries);
        return Ok(new SharedContextAck(doc.Id, doc.Version, doc.Seq));
    });

    /// <summary>Sequential mode: the holder (or an admin) passes the turn token to the next writer in order.</summary>
    public Task<SharedReply<SharedContextAck>> PassTurn(SimpleCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<SharedContextAck>(command.TenantId, command.Id, command.AgentId);
        if (refusal is not null)
        {
            return refusal;
        }
        if (doc!.Mode != "sequential")
        {
            return Fail<SharedContextAck>(409, "not-sequential", $"Shared context '{doc.Id}' is in {doc.Mode} mode; there is no turn token.");
        }
        if (doc.TurnHolder != command.AgentId && doc.ActiveMember(command.AgentId)?.Role != "admin")
        {
            return Fail<SharedContextAck>(409, "not-your-turn", $"It is '{doc.TurnHolder}''s turn.", Extensions(("turnHolder", doc.TurnHolder)));
        }
        PassTurn(doc, command.AgentId, entries);
        await CommitAsync(doc, entries);
        return Ok(new SharedContextAck(doc.Id, doc.Version, doc.Seq));
    });

    /// <summary>Parallel mode: claims fields for a while; claims of different agents never overlap.</summary>
    public Task<SharedReply<ClaimReply>> Claim(ClaimCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<ClaimReply>(command.TenantId, command.Id, command.AgentId);
        if (refusal is not null)
        {
            return refusal;
        }
        if (doc!.Mode != "parallel")
        {
            return Fail<ClaimReply>(409, "not-parallel", $"Shared context '{doc.Id}' is in {doc.Mode} mode; claims are for parallel mode.");
        }
        if (WriteRefusal<ClaimReply>(doc, command.AgentId, command.Fields) is { } forbidden)
        {
            return forbidden;
        }
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        doc.Claims.RemoveAll(c => c.ExpiresAtMs <= nowMs);
        foreach (var field in command.Fields)
        {
            if (doc.Claims.Find(c => c.AgentId != command.AgentId && c.Fields.Contains(field)) is { } held)
            {
                return Fail<ClaimReply>(409, "field-claimed", $"Field '{field}' is claimed by '{held.AgentId}' until {DateTimeOffset.FromUnixTimeMilliseconds(held.ExpiresAtMs):O}.",
                    Extensions(("field", field), ("holder", held.AgentId), ("expiresAtMs", held.ExpiresAtMs)));
            }
        }
        // The agent's own earlier claims on these fields are replaced by this one (a renewal).
        foreach (var own in doc.Claims.Where(c => c.AgentId == command.AgentId))
        {
            own.Fields.RemoveAll(command.Fields.Contains);
        }
        doc.Claims.RemoveAll(c => c.Fields.Count == 0);
        var claim = new FieldClaim { ClaimId = "claim-" + Guid.NewGuid().ToString("N")[..12], AgentId = command.AgentId, Fields = [.. command.Fields], ExpiresAtMs = nowMs + (command.TtlSeconds * 1000L) };
        doc.Claims.Add(claim);
        entries.Add(NewEntry(doc, "claimed", command.AgentId, null, null, Detail(claim)));
        await CommitAsync(doc, entries);
        return Ok(new ClaimReply(claim.ClaimId, claim.AgentId, claim.Fields, claim.ExpiresAtMs, doc.Seq));
    });

    /// <summary>Parallel mode: releases a claim (its holder or an admin).</summary>
    public Task<SharedReply<SharedContextAck>> ReleaseClaim(SimpleCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<SharedContextAck>(command.TenantId, command.Id, command.AgentId);
        if (refusal is not null)
        {
            return refusal;
        }
        var claim = doc!.Claims.Find(c => c.ClaimId == command.Target);
        if (claim is null)
        {
            return Ok(new SharedContextAck(doc.Id, doc.Version, doc.Seq)); // released or expired already
        }
        if (claim.AgentId != command.AgentId && doc.ActiveMember(command.AgentId)?.Role != "admin")
        {
            return Fail<SharedContextAck>(403, "claim-forbidden", $"Claim '{claim.ClaimId}' is '{claim.AgentId}''s.");
        }
        doc.Claims.Remove(claim);
        entries.Add(NewEntry(doc, "claim-released", command.AgentId, null, null, Detail(new { claim.ClaimId, claim.AgentId, claim.Fields })));
        await CommitAsync(doc, entries);
        return Ok(new SharedContextAck(doc.Id, doc.Version, doc.Seq));
    });

    /// <summary>Hierarchical and democratic modes: proposes changes (a retry with the same id creates nothing new).</summary>
    public Task<SharedReply<Proposal>> Propose(ProposeCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<Proposal>(command.TenantId, command.Id, command.AgentId);
        if (refusal is not null)
        {
            return refusal;
        }
        var request = command.Request;
        if (request.ProposalId is { } id && doc!.Proposals.Find(p => p.ProposalId == id) is { } known)
        {
            return known.Author == command.AgentId
                ? Ok(known)
                : Fail<Proposal>(409, "proposal-exists", $"Proposal '{id}' exists and is '{known.Author}''s.");
        }
        if (doc!.Mode is not ("hierarchical" or "democratic"))
        {
            return Fail<Proposal>(409, "proposals-not-used", $"Shared context '{doc.Id}' is in {doc.Mode} mode; write with PATCH.");
        }
        if (WriteRefusal<Proposal>(doc, command.AgentId, request.Changes!.Keys) is { } forbidden)
        {
            return forbidden;
        }
        foreach (var (name, change) in request.Changes!)
        {
            if (!doc.Fields.TryGetValue(name, out var field))
            {
                return Fail<Proposal>(400, "unknown-field", $"Shared context '{doc.Id}' has no field '{name}'.", Extensions(("field", name)));
            }
            if (FieldRules.Allowed(name, field, FieldRules.Operation(name, change).Op) is { } notAllowed)
            {
                return Fail<Proposal>(notAllowed.Status, notAllowed.Code, notAllowed.Detail, Extensions(("field", name)));
            }
        }
        if (request.BaseVersion > doc.Version)
        {
            return Fail<Proposal>(400, "invalid-baseVersion", $"baseVersion {request.BaseVersion} is ahead of the current version {doc.Version}.");
        }
        var now = time.GetUtcNow();
        var deadlineSeconds = request.DeadlineSeconds ?? doc.Voting.DeadlineSeconds;
        var proposal = new Proposal
        {
            ProposalId = request.ProposalId ?? "prop-" + Guid.NewGuid().ToString("N")[..12],
            Author = command.AgentId,
            BaseVersion = request.BaseVersion!.Value,
            Changes = request.Changes!,
            StepId = request.StepId,
            TraceId = request.TraceId,
            CreatedAtMs = now.ToUnixTimeMilliseconds(),
            DeadlineMs = now.ToUnixTimeMilliseconds() + (deadlineSeconds * 1000L),
        };
        doc.Proposals.Add(proposal);
        entries.Add(NewEntry(doc, "proposed", command.AgentId, request.StepId, null, Detail(new { proposal.ProposalId, proposal.BaseVersion, proposal.Changes, proposal.DeadlineMs }), request.TraceId));
        if (doc.Mode == "democratic")
        {
            DecideReady(doc, entries); // a context with a single voter has no one to wait for... except that voter
        }
        await CommitAsync(doc, entries);
        if (doc.Mode == "democratic" && proposal.Status == "pending")
        {
            try
            {
                await RegisterReminderAsync(ReminderName(proposal.ProposalId), [], TimeSpan.FromSeconds(deadlineSeconds), TimeSpan.Zero);
            }
            catch (Exception ex)
            {
                // The proposal is stored; without the reminder it is decided by the first call after its deadline.
                logger.LogError(ex, "Registering the deadline of proposal {ProposalId} failed", proposal.ProposalId);
            }
        }
        return Ok(proposal);
    });

    /// <summary>
    /// A vote. Hierarchical: the lead's vote is the decision. Democratic: one vote per voter (a
    /// repeated identical vote is a no-op); the proposal is decided as soon as the outcome is
    /// certain, or at the deadline; it is applied exactly once.
    /// </summary>
    public Task<SharedReply<Proposal>> Vote(VoteCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<Proposal>(command.TenantId, command.Id, command.AgentId, allowClosed: true);
        if (refusal is not null)
        {
            return refusal;
        }
        var proposal = doc!.Proposals.Find(p => p.ProposalId == command.ProposalId);
        if (proposal is null)
        {
            return Fail<Proposal>(404, "proposal-not-found", $"Shared context '{doc.Id}' has no proposal '{command.ProposalId}'.");
        }
        if (proposal.Votes.TryGetValue(command.AgentId, out var earlier))
        {
            // A retry of the same vote answers with the proposal as it is now; a changed vote is refused.
            return earlier == command.Approve
                ? await SaveIfChangedAsync(doc, entries, proposal)
                : Fail<Proposal>(409, "already-voted", $"'{command.AgentId}' already voted {(earlier ? "for" : "against")} proposal '{proposal.ProposalId}'.");
        }
        if (proposal.Status != "pending")
        {
            return Fail<Proposal>(409, "proposal-decided", $"Proposal '{proposal.ProposalId}' was decided ({proposal.Status}).", Extensions(("proposal", proposal)));
        }
        if (doc.Mode == "hierarchical")
        {
            if (command.AgentId != doc.Lead)
            {
                return Fail<Proposal>(403, "lead-only", $"Only the lead '{doc.Lead}' decides proposals.");
            }
            proposal.Votes[command.AgentId] = command.Approve;
            entries.Add(NewEntry(doc, "voted", command.AgentId, null, null, Detail(new { proposal.ProposalId, approve = command.Approve })));
            Decide(doc, proposal, command.Approve, command.Approve ? null : "rejected-by-lead", entries);
        }
        else
        {
            if (Shared.Rank(doc.ActiveMember(command.AgentId)?.Role) < 1)
            {
                return Fail<Proposal>(403, "voter-required", $"Only writers and admins vote; '{command.AgentId}' is not one.");
            }
            proposal.Votes[command.AgentId] = command.Approve;
            entries.Add(NewEntry(doc, "voted", command.AgentId, null, null, Detail(new { proposal.ProposalId, approve = command.Approve })));
            DecideReady(doc, entries);
        }
        await CommitAsync(doc, entries);
        if (proposal.Status != "pending" && doc.Mode == "democratic")
        {
            await UnregisterQuietlyAsync(proposal.ProposalId);
        }
        return Ok(proposal);
    });

    /// <summary>A proposal (deciding it first if its deadline passed).</summary>
    public Task<SharedReply<Proposal>> GetProposal(VoteCommand command) => Guarded(async () =>
    {
        var (doc, entries, refusal) = await OpenAsync<Proposal>(command.TenantId, command.Id, command.AgentId, allowClosed: true);
        if (refusal is not null)
        {
            return refusal;
        }
        var proposal = doc!.Proposals.Find(p => p.ProposalId == command.ProposalId);
        return proposal is null
            ? Fail<Proposal>(404, "proposal-not-found", $"Shared context '{doc.Id}' has no proposal '{command.ProposalId}'.")
            : await SaveIfChangedAsync(doc, entries, proposal);
    });

    /// <inheritdoc />
    public async Task ReceiveReminderAsync(string reminderName, byte[] state, TimeSpan dueTime, TimeSpan period)
    {
        var separator = Id.IndexOf('~', StringComparison.Ordinal);
        await Guarded(async () =>
        {
            var doc = await LoadAsync(Id[..separator], Id[(separator + 1)..]);
            if (doc is not null)
            {
                var entries = new List<SharedContextChange>();
                DecideDue(doc, entries);
                if (entries.Count > 0)
                {
                    await CommitAsync(doc, entries);
                }
            }
            return Ok(true);
        });
    }

    // ---- the protocol -------------------------------------------------------------------------

    private Dictionary<string, FieldDiff> _lastDiff = new(StringComparer.Ordinal);

    // Applies every change or none; on success the document has the next version and _lastDiff the diff.
    private SharedReply<SharedContextAck>? ApplyChanges(SharedContextDocument doc, Dictionary<string, FieldChange> changes, long baseVersion)
    {
        var version = doc.Version + 1;
        var next = new Dictionary<string, SharedField>(StringComparer.Ordinal);
        var diff = new Dictionary<string, FieldDiff>(StringComparer.Ordinal);
        foreach (var (name, change) in changes)
        {
            if (!doc.Fields.TryGetValue(name, out var field))
            {
                return Fail<SharedContextAck>(400, "unknown-field", $"Shared context '{doc.Id}' has no field '{name}'.", Extensions(("field", name)));
            }
            var (applied, fieldDiff, refused) = FieldRules.Apply(name, field, change, baseVersion, version);
            if (refused is not null)
            {
                return refused.WithCurrent
                    ? Fail<SharedContextAck>(refused.Status, refused.Code, refused.Detail, Extensions(("field", name), ("currentValue", field.Value),
                        ("fieldVersion", field.Version), ("version", doc.Version), ("seq", doc.Seq)))
                    : Fail<SharedContextAck>(refused.Status, refused.Code, refused.Detail, Extensions(("field", name)));
            }
            next[name] = applied!;
            diff[name] = fieldDiff!;
        }
        foreach (var (name, field) in next)
        {
            doc.Fields[name] = field;
        }
        doc.Version = version;
        _lastDiff = diff;
        return null;
    }

    private SharedReply<T>? WriteRefusal<T>(SharedContextDocument doc, string agentId, IEnumerable<string> fields)
    {
        var member = doc.ActiveMember(agentId);
        if (Shared.Rank(member?.Role) < 1)
        {
            return Fail<T>(403, "write-forbidden", $"'{agentId}' may not write shared context '{doc.Id}' (role {member?.Role ?? "none"}).");
        }
        if (member!.Role != "admin" && member.Fields is { } granted && fields.FirstOrDefault(f => !granted.Contains(f)) is { } denied)
        {
            return Fail<T>(403, "field-forbidden", $"'{agentId}' may not write field '{denied}'.", Extensions(("field", denied)));
        }
        return null;
    }

    private SharedReply<SharedContextAck>? ModeRefusal(SharedContextDocument doc, string agentId, IEnumerable<string> fields)
    {
        switch (doc.Mode)
        {
            case "sequential" when doc.TurnHolder != agentId:
                return Fail<SharedContextAck>(409, "not-your-turn", $"It is '{doc.TurnHolder}''s turn; wait for the token.", Extensions(("turnHolder", doc.TurnHolder)));
            case "parallel":
                var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
                foreach (var field in fields)
                {
                    var claim = doc.Claims.Find(c => c.ExpiresAtMs > nowMs && c.Fields.Contains(field));
                    if (claim?.AgentId != agentId)
                    {
                        return claim is null
                            ? Fail<SharedContextAck>(409, "claim-required", $"Claim field '{field}' before writing it.", Extensions(("field", field)))
                            : Fail<SharedContextAck>(409, "field-claimed", $"Field '{field}' is claimed by '{claim.AgentId}'.", Extensions(("field", field), ("holder", claim.AgentId)));
                    }
                }
                return null;
            case "hierarchical" when agentId != doc.Lead:
                return Fail<SharedContextAck>(409, "proposal-required", $"In hierarchical mode only the lead '{doc.Lead}' writes; propose the change.");
            case "democratic":
                return Fail<SharedContextAck>(409, "proposal-required", "In democratic mode changes are proposed and voted on.");
            default:
                return null;
        }
    }

    private void PassTurn(SharedContextDocument doc, string by, List<SharedContextChange> entries)
    {
        var writers = doc.TurnOrder.Where(a => Shared.Rank(doc.ActiveMember(a)?.Role) >= 1).ToList();
        if (writers.Count == 0)
        {
            return;
        }
        var from = doc.TurnHolder;
        var index = from is null ? -1 : doc.TurnOrder.IndexOf(from);
        string? to = null;
        for (var step = 1; step <= doc.TurnOrder.Count && to is null; step++)
        {
            var candidate = doc.TurnOrder[(index + step + doc.TurnOrder.Count) % doc.TurnOrder.Count];
            if (writers.Contains(candidate) && (candidate != from || writers.Count == 1))
            {
                to = candidate;
            }
        }
        doc.TurnHolder = to;
        entries.Add(NewEntry(doc, "turn-passed", by, null, null, Detail(new { from, to })));
    }

    // Democratic: decides every pending proposal whose outcome is certain or whose deadline passed.
    private void DecideReady(SharedContextDocument doc, List<SharedContextChange> entries)
    {
        var voters = doc.Members.Where(m => m.Status == "active" && Shared.Rank(m.Role) >= 1).Select(m => m.AgentId).ToHashSet(StringComparer.Ordinal);
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var proposal in doc.Proposals.Where(p => p.Status == "pending").ToList())
        {
            var yes = proposal.Votes.Count(v => v.Value && voters.Contains(v.Key));
            var no = proposal.Votes.Count(v => !v.Value && voters.Contains(v.Key));
            var quorum = Math.Max(1, (int)Math.Ceiling(doc.Voting.Quorum * voters.Count));
            var open = voters.Count(v => !proposal.Votes.ContainsKey(v));
            if (yes + no >= quorum && yes > no + open)
            {
                Decide(doc, proposal, true, null, entries); // the remaining votes cannot change the outcome
            }
            else if (no >= yes + open)
            {
                Decide(doc, proposal, false, "majority-against", entries);
            }
            else if (nowMs >= proposal.DeadlineMs)
            {
                var approved = yes + no >= quorum && yes > no;
                Decide(doc, proposal, approved, approved ? null : yes + no < quorum ? "no-quorum" : "no-majority", entries);
            }
        }
    }

    private void DecideDue(SharedContextDocument doc, List<SharedContextChange> entries)
    {
        if (doc.Mode == "democratic" && doc.Status == "open" && doc.Proposals.Any(p => p.Status == "pending" && time.GetUtcNow().ToUnixTimeMilliseconds() >= p.DeadlineMs))
        {
            DecideReady(doc, entries);
        }
    }

    // The one place a proposal leaves "pending": its changes are applied here, once, in the same
    // transaction as the decision.
    private void Decide(SharedContextDocument doc, Proposal proposal, bool approved, string? reason, List<SharedContextChange> entries)
    {
        proposal.DecidedAtMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (approved)
        {
            if (ApplyChanges(doc, proposal.Changes, proposal.BaseVersion) is { } refused)
            {
                proposal.Status = "failed";
                proposal.Reason = $"{refused.Code}: {refused.Detail}";
            }
            else
            {
                proposal.Status = "applied";
                proposal.AppliedVersion = doc.Version;
                entries.Add(NewEntry(doc, "updated", proposal.Author, proposal.StepId, _lastDiff, Detail(new { proposal.ProposalId }), proposal.TraceId));
            }
        }
        else
        {
            proposal.Status = "rejected";
            proposal.Reason = reason;
        }
        entries.Add(NewEntry(doc, "proposal-decided", proposal.Author, proposal.StepId, null, traceId: proposal.TraceId, detail: Detail(new
        {
            proposal.ProposalId,
            proposal.Status,
            proposal.Reason,
            yes = proposal.Votes.Count(v => v.Value),
            no = proposal.Votes.Count(v => !v.Value),
            proposal.AppliedVersion,
        })));
        var decided = doc.Proposals.Where(p => p.Status != "pending").ToList();
        foreach (var old in decided.Take(Math.Max(0, decided.Count - DecidedProposalsKept)))
        {
            doc.Proposals.Remove(old);
        }
    }

    // ---- plumbing -----------------------------------------------------------------------------

    private async Task<(SharedContextDocument? Doc, List<SharedContextChange> Entries, SharedReply<T>? Refusal)> OpenAsync<T>(
        string tenantId, string id, string agentId, bool mustBeMember = true, bool allowClosed = false)
    {
        var doc = await LoadAsync(tenantId, id);
        var entries = new List<SharedContextChange>();
        if (doc is null)
        {
            return (null, entries, Fail<T>(404, "shared-context-not-found", $"Shared context '{id}' is unknown."));
        }
        DecideDue(doc, entries); // deadlines first, so everything after sees the decided state
        if (mustBeMember && doc.ActiveMember(agentId) is null)
        {
            return (doc, entries, Fail<T>(403, "not-a-member", $"'{agentId}' is not a member of shared context '{id}'."));
        }
        if (!allowClosed && doc.Status == "closed")
        {
            return (doc, entries, Fail<T>(409, "context-closed", $"Shared context '{id}' is closed.", Extensions(("version", doc.Version), ("seq", doc.Seq))));
        }
        return (doc, entries, null);
    }

    private async Task<SharedReply<Proposal>> SaveIfChangedAsync(SharedContextDocument doc, List<SharedContextChange> entries, Proposal proposal)
    {
        if (entries.Count > 0)
        {
            await CommitAsync(doc, entries);
        }
        return Ok(proposal);
    }

    private async Task<SharedContextDocument?> LoadAsync(string tenantId, string id) =>
        _doc is not null && _doc.TenantId == tenantId && _doc.Id == id ? _doc : _doc = await store.GetAsync(tenantId, id);

    // A change made from a trace step records the step's trace: the request's, else the context's.
    private SharedContextChange NewEntry(SharedContextDocument doc, string kind, string author, string? stepId, Dictionary<string, FieldDiff>? diff, JsonElement? detail, string? traceId = null)
    {
        doc.Seq++;
        doc.UpdatedAt = time.GetUtcNow().ToUnixTimeSeconds();
        return new SharedContextChange
        {
            Seq = doc.Seq,
            Version = doc.Version,
            Kind = kind,
            Author = author,
            StepId = stepId,
            TraceId = stepId is null ? null : traceId ?? doc.Links.TraceId,
            AtMs = time.GetUtcNow().ToUnixTimeMilliseconds(),
            Diff = diff,
            Detail = detail,
        };
    }

    private async Task CommitAsync(SharedContextDocument doc, List<SharedContextChange> entries)
    {
        await store.CommitAsync(doc, entries);
        _doc = doc;
        var members = doc.Members.Where(m => m.Status == "active").Select(m => m.AgentId).ToList();
        foreach (var entry in entries)
        {
            var changed = new SharedContextChanged(doc.TenantId, doc.Id, entry.Seq, entry.Version, entry.Kind, entry.Author, entry.StepId,
                entry.Diff, entry.Detail, members, entry.AtMs, entry.TraceId);
            feed.Publish(changed);
            try
            {
                await publisher.PublishAsync(SharedContextTopics.Changed, SharedContextTopics.ChangedType, changed,
                    new PublishOptions($"{ActorId(doc.TenantId, doc.Id)}-{entry.Seq}", Subject: doc.Id, TenantId: doc.TenantId));
            }
            catch (Exception ex)
            {
                // Committed: a subscriber sees the gap in seq and reads the entry from GET .../changes.
                logger.LogError(ex, "Publishing change {Seq} of shared context {Id} failed", entry.Seq, doc.Id);
            }
        }
    }

    private async Task UnregisterQuietlyAsync(string proposalId)
    {
        try
        {
            await UnregisterReminderAsync(ReminderName(proposalId));
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Unregistering the deadline of proposal {ProposalId} failed (it will fire and find it decided)", proposalId);
        }
    }

    private async Task<SharedReply<T>> Guarded<T>(Func<Task<SharedReply<T>>> call)
    {
        try
        {
            return await call();
        }
        catch (ProblemException problem)
        {
            _doc = null;
            return Fail<T>(problem.Status, problem.Code, problem.Message);
        }
        catch
        {
            _doc = null; // the cached document may hold a change that was not committed
            throw;
        }
    }

    private static string ReminderName(string proposalId) => "proposal:" + proposalId;

    private static SharedReply<T> Ok<T>(T value) => new(value);

    private SharedReply<T> Fail<T>(int status, string code, string detail, Dictionary<string, JsonElement>? extensions = null)
    {
        // A refusal leaves the stored document as it was; the cached copy may have been touched (deadlines decided, claims pruned): reload next time.
        _doc = null;
        return new(default, status, code, detail, extensions);
    }

    private static JsonElement Detail<T>(T value) => JsonSerializer.SerializeToElement(value, ContractsJson.Options);

    private static Dictionary<string, JsonElement> Extensions(params (string Key, object? Value)[] values) =>
        values.ToDictionary(v => v.Key, v => JsonSerializer.SerializeToElement(v.Value, ContractsJson.Options), StringComparer.Ordinal);
}
