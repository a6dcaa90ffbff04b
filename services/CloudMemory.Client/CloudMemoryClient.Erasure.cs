using CloudMemory.Contracts.Erasure;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Client;

/// <summary>A user's sessions, deleting a conversation, erasing a user (session app).</summary>
public sealed partial class CloudMemoryClient
{
    /// <summary><c>GET /v1/users/{userId}/sessions</c>: a page of the user's conversations, newest activity first; pass <see cref="SessionPage.NextCursor"/> for the next.</summary>
    public Task<SessionPage> ListUserSessionsAsync(string userId, int limit = 20, string? cursor = null, CancellationToken cancellationToken = default) =>
        SendAsync<SessionPage>(HttpMethod.Get, options.SessionAppId,
            $"v1/users/{Escape(userId)}/sessions?limit={limit}{(cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor))}", null, null, cancellationToken);

    /// <summary>Every conversation of the user, page by page.</summary>
    public async IAsyncEnumerable<SessionSummary> ListAllUserSessionsAsync(string userId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? cursor = null;
        do
        {
            var page = await ListUserSessionsAsync(userId, 200, cursor, cancellationToken);
            foreach (var item in page.Items)
            {
                yield return item;
            }
            cursor = page.NextCursor;
        }
        while (cursor is not null);
    }

    /// <summary>
    /// <c>DELETE /v1/sessions/{conversationId}</c>: removes the conversation, its session, the long-term memories
    /// derived from it and its stored events. False when it was unknown (or already deleted).
    /// </summary>
    public async Task<bool> DeleteSessionAsync(string conversationId, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(HttpMethod.Delete, options.SessionAppId, $"v1/sessions/{Escape(conversationId)}", null, null, cancellationToken);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return false;
        }
        if (!response.IsSuccessStatusCode)
        {
            await ReadAsync<object>(response, cancellationToken); // throws the problem as a CloudMemoryException
        }
        return true;
    }

    /// <summary><c>DELETE /v1/users/{userId}</c>: erases the user in every service (a tenant admin credential when auth is on).</summary>
    public Task<ErasureReport> EraseUserAsync(string userId, CancellationToken cancellationToken = default) =>
        SendAsync<ErasureReport>(HttpMethod.Delete, options.SessionAppId, $"v1/users/{Escape(userId)}", null, null, cancellationToken);
}
