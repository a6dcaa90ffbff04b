using System.Net;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using CloudMemory.Contracts;

namespace CloudMemory.Client;

/// <summary>An accepted change of a shared context: the version of its fields and the change's seq.</summary>
public sealed record SharedContextAck(string Id, long Version, long Seq);

/// <summary>A field as read.</summary>
public sealed record SharedFieldValue(JsonElement Value, string Conflict, long Version);

/// <summary>A member as read.</summary>
public sealed record SharedContextMember(string AgentId, string Role, List<string>? Fields, string Status);

/// <summary>A shared context as read (proposals and claims as JSON).</summary>
public sealed record SharedContextSnapshot(string Id, string Owner, string Mode, string Status, long Version, long Seq,
    Dictionary<string, SharedFieldValue> Fields, List<SharedContextMember> Members, string? TurnHolder, string? Lead,
    List<JsonElement> Proposals, List<JsonElement> Claims);

/// <summary>One entry of a shared context's ordered change log.</summary>
public sealed record SharedContextChangeEntry(long Seq, long Version, string Kind, string Author, string? StepId, long AtMs,
    Dictionary<string, JsonElement>? Diff, JsonElement? Detail);

/// <summary>A page of the change log; <see cref="LastSeq"/> is the newest seq.</summary>
public sealed record SharedContextChangePage(string Id, long AfterSeq, long LastSeq, List<SharedContextChangeEntry> Changes);

/// <summary>The outcome of <see cref="SharedContextsClient.TryUpdateAsync"/>: accepted, or refused with the problem (409: the current value and version).</summary>
public sealed record SharedUpdateOutcome(SharedContextAck? Ack, HttpStatusCode Status, string? Code, JsonElement? Problem)
{
    /// <summary>True when the change was applied.</summary>
    public bool Accepted => Ack is not null;
}

/// <summary>
/// Shared contexts (issue 12) from .NET: create, read, versioned updates, membership, turn,
/// claims, proposals and votes, and an ordered change stream that resumes after a disconnect.
/// The calling agent is <see cref="CloudMemoryClientOptions.AgentId"/> (required by every route).
/// </summary>
public sealed partial class SharedContextsClient(HttpClient http, CloudMemoryClientOptions options)
{
    private const string Root = "v1/shared-contexts";

    /// <summary>Creates a shared context; <paramref name="request"/> is the JSON body of <c>POST /v1/shared-contexts</c> (id, mode, policy, members, fields…).</summary>
    public Task<SharedContextAck> CreateAsync(object request, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextAck>(HttpMethod.Post, Root, request, cancellationToken);

    /// <summary>Reads it (optionally as of a past version).</summary>
    public Task<SharedContextSnapshot> GetAsync(string id, long? version = null, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextSnapshot>(HttpMethod.Get, $"{Root}/{Escape(id)}" + (version is null ? "" : $"?version={version}"), null, cancellationToken);

    /// <summary>A versioned update; <paramref name="changes"/> maps field names to <c>{set|add|remove|increment: …}</c>. Throws <see cref="CloudMemoryException"/> when refused.</summary>
    public Task<SharedContextAck> UpdateAsync(string id, long baseVersion, object changes, string? stepId = null, string? changeId = null, bool passTurn = false,
        CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextAck>(HttpMethod.Patch, $"{Root}/{Escape(id)}", new { baseVersion, changes, stepId, changeId, passTurn }, cancellationToken);

    /// <summary>A versioned update that reports a refusal instead of throwing (a 409 carries the field's current value and version).</summary>
    public async Task<SharedUpdateOutcome> TryUpdateAsync(string id, long baseVersion, object changes, string? stepId = null, string? changeId = null,
        CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(HttpMethod.Patch, $"{Root}/{Escape(id)}", new { baseVersion, changes, stepId, changeId }, cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return new((await response.Content.ReadFromJsonAsync<SharedContextAck>(ContractsJson.Options, cancellationToken))!, response.StatusCode, null, null);
        }
        var problem = await ProblemOf(response, cancellationToken);
        return new(null, response.StatusCode, problem?.TryGetProperty("code", out var code) == true ? code.GetString() : null, problem);
    }

    /// <summary>Joins (this agent) or, as an admin, invites another agent.</summary>
    public Task<SharedContextAck> AddMemberAsync(string id, string agentId, string role = "write", IReadOnlyList<string>? fields = null, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextAck>(HttpMethod.Post, $"{Root}/{Escape(id)}/members", new { agentId, role, fields }, cancellationToken);

    /// <summary>Leaves (this agent) or, as an admin, removes a member.</summary>
    public Task<SharedContextAck> RemoveMemberAsync(string id, string agentId, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextAck>(HttpMethod.Delete, $"{Root}/{Escape(id)}/members/{Escape(agentId)}", null, cancellationToken);

    /// <summary>Changes a member's role (admin).</summary>
    public Task<SharedContextAck> ChangeRoleAsync(string id, string agentId, string role, IReadOnlyList<string>? fields = null, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextAck>(HttpMethod.Put, $"{Root}/{Escape(id)}/members/{Escape(agentId)}", new { role, fields }, cancellationToken);

    /// <summary>Closes (admin).</summary>
    public Task<SharedContextAck> CloseAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextAck>(HttpMethod.Post, $"{Root}/{Escape(id)}/close", null, cancellationToken);

    /// <summary>Rolls the fields back to a version, as a new version (admin).</summary>
    public Task<SharedContextAck> RollbackAsync(string id, long toVersion, string? stepId = null, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextAck>(HttpMethod.Post, $"{Root}/{Escape(id)}/rollback", new { toVersion, stepId }, cancellationToken);

    /// <summary>Sequential mode: passes the turn token.</summary>
    public Task<SharedContextAck> PassTurnAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextAck>(HttpMethod.Post, $"{Root}/{Escape(id)}/turn/pass", null, cancellationToken);

    /// <summary>Parallel mode: claims fields for <paramref name="ttlSeconds"/>; returns the claim (claimId, fields, expiresAtMs).</summary>
    public Task<JsonElement> ClaimAsync(string id, IReadOnlyList<string> fields, int ttlSeconds = 60, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Post, $"{Root}/{Escape(id)}/claims", new { fields, ttlSeconds }, cancellationToken);

    /// <summary>Parallel mode: releases a claim.</summary>
    public Task<SharedContextAck> ReleaseClaimAsync(string id, string claimId, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextAck>(HttpMethod.Delete, $"{Root}/{Escape(id)}/claims/{Escape(claimId)}", null, cancellationToken);

    /// <summary>Hierarchical and democratic modes: proposes changes; returns the proposal (proposalId, status, votes…).</summary>
    public Task<JsonElement> ProposeAsync(string id, long baseVersion, object changes, string? proposalId = null, int? deadlineSeconds = null, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Post, $"{Root}/{Escape(id)}/proposals", new { proposalId, baseVersion, changes, deadlineSeconds }, cancellationToken);

    /// <summary>Votes (hierarchical: the lead's vote decides); returns the proposal.</summary>
    public Task<JsonElement> VoteAsync(string id, string proposalId, bool approve, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Post, $"{Root}/{Escape(id)}/proposals/{Escape(proposalId)}/votes", new { approve }, cancellationToken);

    /// <summary>A page of the change log after <paramref name="afterSeq"/>.</summary>
    public Task<SharedContextChangePage> GetChangesAsync(string id, long afterSeq = 0, int limit = 100, CancellationToken cancellationToken = default) =>
        SendAsync<SharedContextChangePage>(HttpMethod.Get, $"{Root}/{Escape(id)}/changes?afterSeq={afterSeq}&limit={limit}", null, cancellationToken);

    /// <summary>
    /// Every change after <paramref name="afterSeq"/>, in seq order, live (server-sent events),
    /// until cancelled. A dropped connection is resumed with <c>Last-Event-ID</c>; a gap in seq
    /// (which the server never sends, but a proxy could cause) is filled from the change log.
    /// </summary>
    public async IAsyncEnumerable<SharedContextChangeEntry> FollowAsync(string id, long afterSeq = 0, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var last = afterSeq;
        while (!cancellationToken.IsCancellationRequested)
        {
            var entries = new List<SharedContextChangeEntry>();
            using (var request = Request(HttpMethod.Get, $"{Root}/{Escape(id)}/changes", null))
            {
                request.Headers.Add("Accept", "text/event-stream");
                request.Headers.Add("Last-Event-ID", last.ToString(System.Globalization.CultureInfo.InvariantCulture));
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    await ThrowAsync(response, cancellationToken);
                }
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
                while (await reader.ReadLineAsync(cancellationToken) is { } line)
                {
                    if (!line.StartsWith("data: ", StringComparison.Ordinal))
                    {
                        continue;
                    }
                    var entry = JsonSerializer.Deserialize<SharedContextChangeEntry>(line.AsSpan(6), ContractsJson.Options)!;
                    if (entry.Seq <= last)
                    {
                        continue;
                    }
                    if (entry.Seq > last + 1)
                    {
                        var missing = await GetChangesAsync(id, last, (int)Math.Min(1000, entry.Seq - last - 1), cancellationToken);
                        foreach (var gap in missing.Changes.Where(c => c.Seq > last && c.Seq < entry.Seq))
                        {
                            yield return gap;
                            last = gap.Seq;
                        }
                    }
                    yield return entry;
                    last = entry.Seq;
                    if (entry.Kind is "member-left" or "member-removed" && entry.Detail?.TryGetProperty("agentId", out var who) == true && who.GetString() == options.AgentId)
                    {
                        yield break;
                    }
                }
            }
            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken); // the server closed the stream: reconnect from the last seq
        }
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(method, path, body, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            await ThrowAsync(response, cancellationToken);
        }
        return (await response.Content.ReadFromJsonAsync<T>(ContractsJson.Options, cancellationToken))!;
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var request = Request(method, path, body);
        return await http.SendAsync(request, cancellationToken);
    }

    private HttpRequestMessage Request(HttpMethod method, string path, object? body)
    {
        var uri = options.DaprHttpPort is { } port
            ? new Uri($"http://127.0.0.1:{port}/v1.0/invoke/{options.SessionAppId}/method/{path}")
            : new Uri(options.BaseAddress ?? http.BaseAddress ?? throw new InvalidOperationException("Set BaseAddress or DaprHttpPort."), path);
        var request = new HttpRequestMessage(method, uri);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: ContractsJson.Options);
        }
        if (options.TenantId is not null)
        {
            request.Headers.Add("X-Tenant-Id", options.TenantId);
        }
        if (options.AgentId is not null)
        {
            request.Headers.Add("X-Agent-Id", options.AgentId);
        }
        if (options.DaprHttpPort is not null && options.DaprApiToken is not null)
        {
            request.Headers.Add("dapr-api-token", options.DaprApiToken);
        }
        return request;
    }

    private static async Task<JsonElement?> ProblemOf(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        try
        {
            return JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static async Task ThrowAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var problem = await ProblemOf(response, cancellationToken);
        var code = problem?.ValueKind == JsonValueKind.Object && problem.Value.TryGetProperty("code", out var c) ? c.GetString() : null;
        var detail = problem?.ValueKind == JsonValueKind.Object && problem.Value.TryGetProperty("detail", out var d) ? d.GetString() : null;
        throw new CloudMemoryException(response.StatusCode, code, $"{(int)response.StatusCode} {code}: {detail}");
    }

    private static string Escape(string segment) => Uri.EscapeDataString(segment);
}
