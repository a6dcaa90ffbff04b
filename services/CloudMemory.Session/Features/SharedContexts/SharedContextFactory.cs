using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>Checks a create request and builds the first version of the document (a 400 problem for anything invalid).</summary>
public static class SharedContextFactory
{
    /// <summary>The document a create command describes, at version 1.</summary>
    public static SharedContextDocument Build(CreateSharedContextCommand command, DateTimeOffset now)
    {
        var request = command.Request;
        var mode = request.Mode ?? "open";
        if (!Shared.Modes.Contains(mode))
        {
            throw new ProblemException(400, "invalid-mode", $"mode must be one of {string.Join(", ", Shared.Modes)}.");
        }
        var policy = request.Policy ?? new SharingPolicy();
        if (!Shared.JoinPolicies.Contains(policy.Join))
        {
            throw new ProblemException(400, "invalid-policy", $"policy.join must be one of {string.Join(", ", Shared.JoinPolicies)}.");
        }
        if (policy.MaxJoinRole is not ("read" or "write"))
        {
            throw new ProblemException(400, "invalid-policy", "policy.maxJoinRole must be read or write.");
        }
        foreach (var agent in policy.Agents)
        {
            Ids.Require(agent, "policy.agents");
        }

        var members = new List<SharedMember> { new() { AgentId = command.AgentId, Role = "admin", Since = now.ToUnixTimeSeconds() } };
        foreach (var spec in request.Members ?? [])
        {
            var member = Member(spec, now);
            if (members.Any(m => m.AgentId == member.AgentId))
            {
                if (member.AgentId == command.AgentId)
                {
                    continue; // the creator is an admin whatever the list says
                }
                throw new ProblemException(400, "duplicate-member", $"'{member.AgentId}' is listed twice.");
            }
            members.Add(member);
        }
        if (members.Count > SharedContextActor.MaxMembers)
        {
            throw new ProblemException(400, "too-many-members", $"A shared context has at most {SharedContextActor.MaxMembers} members.");
        }

        var fields = new Dictionary<string, SharedField>(StringComparer.Ordinal);
        foreach (var (name, value) in command.ConversationFields ?? [])
        {
            fields[name] = FieldRules.Create(name, value, request.ConversationFieldConflict ?? "last-writer-wins", null, false, 1);
        }
        foreach (var (name, spec) in request.Fields ?? [])
        {
            Ids.Require(name, "field");
            if (spec is null)
            {
                throw new ProblemException(400, "invalid-field", $"Field '{name}' needs an object {{value, conflict, schema?}}.");
            }
            CheckSchema(name, spec.Schema);
            fields[name] = FieldRules.Create(name, spec.Value, spec.Conflict, spec.Schema, spec.AppendOnly, 1);
        }
        if (fields.Count > SharedContextActor.MaxFields)
        {
            throw new ProblemException(400, "too-many-fields", $"A shared context has at most {SharedContextActor.MaxFields} fields.");
        }
        foreach (var (name, granted) in members.SelectMany(m => (m.Fields ?? []).Select(f => (f, m.AgentId))))
        {
            if (!fields.ContainsKey(name))
            {
                throw new ProblemException(400, "unknown-field", $"'{granted}' is granted field '{name}', which does not exist.");
            }
        }

        var doc = new SharedContextDocument
        {
            Id = command.Id,
            TenantId = command.TenantId,
            Owner = command.AgentId,
            Mode = mode,
            Policy = new SharingPolicy { Join = policy.Join, Agents = [.. policy.Agents], MaxJoinRole = policy.MaxJoinRole },
            Version = 1,
            CreatedAt = now.ToUnixTimeSeconds(),
            UpdatedAt = now.ToUnixTimeSeconds(),
            Fields = fields,
            Members = members,
            Links = new SharedLinks
            {
                ConversationId = request.FromConversation,
                TraceId = string.IsNullOrEmpty(request.TraceId) ? null : Ids.Require(request.TraceId, "traceId"),
            },
            CreateHash = command.Hash,
        };

        var writers = members.Where(m => Shared.Rank(m.Role) >= 1).Select(m => m.AgentId).ToList();
        if (mode == "sequential")
        {
            var order = request.TurnOrder ?? writers;
            if (order.Count == 0 || order.Distinct().Count() != order.Count || order.Any(a => !writers.Contains(a)))
            {
                throw new ProblemException(400, "invalid-turnOrder", "turnOrder lists each writing member (write or admin role) at most once.");
            }
            doc.TurnOrder = [.. order];
            doc.TurnHolder = order[0];
        }
        if (mode == "hierarchical")
        {
            var lead = request.Lead ?? command.AgentId;
            if (!writers.Contains(lead))
            {
                throw new ProblemException(400, "invalid-lead", "The lead must be a member with the write or admin role.");
            }
            doc.Lead = lead;
        }
        var voting = request.Voting ?? new VotingRules();
        if (voting.Quorum is <= 0 or > 1 || voting.DeadlineSeconds is < 1 or > 7 * 24 * 3600)
        {
            throw new ProblemException(400, "invalid-voting", "voting.quorum is in (0, 1] and voting.deadlineSeconds in 1..604800.");
        }
        doc.Voting = new VotingRules { Quorum = voting.Quorum, DeadlineSeconds = voting.DeadlineSeconds };
        return doc;
    }

    /// <summary>A member from a request.</summary>
    public static SharedMember Member(MemberSpec? spec, DateTimeOffset now)
    {
        if (spec is null)
        {
            throw new ProblemException(400, "invalid-member", "A member is {agentId, role, fields?}.");
        }
        var role = spec.Role ?? "write";
        if (Shared.Rank(role) < 0)
        {
            throw new ProblemException(400, "invalid-role", "role must be read, write or admin.");
        }
        foreach (var field in spec.Fields ?? [])
        {
            Ids.Require(field, "field");
        }
        return new SharedMember { AgentId = Ids.Require(spec.AgentId, "agentId"), Role = role, Fields = spec.Fields?.Distinct().ToList(), Since = now.ToUnixTimeSeconds() };
    }

    private static void CheckSchema(string name, FieldSchema? schema)
    {
        for (var s = schema; s is not null; s = s.Items)
        {
            if (s.Type is { } type && !FieldRules.IsKnownType(type))
            {
                throw new ProblemException(400, "invalid-schema", $"Field '{name}': schema type '{type}' is not one of string, number, integer, boolean, object, array, null.");
            }
            if (s.MaxLength < 0 || s.MaxItems < 0)
            {
                throw new ProblemException(400, "invalid-schema", $"Field '{name}': maxLength and maxItems are not negative.");
            }
        }
    }

    /// <summary>The entities of a conversation's GlobalState as fields (one per property).</summary>
    public static Dictionary<string, JsonElement> FieldsOf(JsonElement entities)
    {
        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (entities.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in entities.EnumerateObject())
            {
                fields[property.Name] = property.Value.Clone();
            }
        }
        return fields;
    }
}
