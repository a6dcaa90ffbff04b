using System.Diagnostics;
using System.Runtime.CompilerServices;
using CloudMemory.Contracts.Sessions;

namespace CloudMemory.Conversations.Log;

/// <summary>Wraps a log with a span and a duration measurement per call (one per database round trip on PostgreSQL).</summary>
public sealed class InstrumentedConversationLog(IConversationLog inner, string store) : IConversationLog
{
    /// <inheritdoc />
    public Task<ConversationStats> EnsureConversationAsync(string tenantId, string conversationId, string userId, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.EnsureConversationAsync(tenantId, conversationId, userId, cancellationToken), conversationId);

    /// <inheritdoc />
    public Task<AppendResult> AppendTurnAsync(string tenantId, TurnAppend turn, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.AppendTurnAsync(tenantId, turn, cancellationToken), turn.ConversationId);

    /// <inheritdoc />
    public Task<CheckpointAppendResult?> AppendCheckpointAsync(string tenantId, CheckpointAppend checkpoint, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.AppendCheckpointAsync(tenantId, checkpoint, cancellationToken), checkpoint.ConversationId);

    /// <inheritdoc />
    public Task<ConversationStats?> GetStatsAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.GetStatsAsync(tenantId, conversationId, cancellationToken), conversationId);

    /// <inheritdoc />
    public Task<HistorySegment> ReadSinceCheckpointAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.ReadSinceCheckpointAsync(tenantId, conversationId, cancellationToken), conversationId);

    /// <inheritdoc />
    public Task<IReadOnlyList<Contracts.Context.LogMessage>> ReadLastTurnsAsync(string tenantId, string conversationId, int turns, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.ReadLastTurnsAsync(tenantId, conversationId, turns, cancellationToken), conversationId);

    /// <inheritdoc />
    public Task<IReadOnlyList<Contracts.Context.LogMessage>> ReadAsync(string tenantId, string conversationId, long afterSequence, int limit, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.ReadAsync(tenantId, conversationId, afterSequence, limit, cancellationToken), conversationId);

    /// <inheritdoc />
    public Task SaveUserProfileAsync(string tenantId, UserProfile profile, CancellationToken cancellationToken = default) =>
        TraceAsync(async () =>
        {
            await inner.SaveUserProfileAsync(tenantId, profile, cancellationToken);
            return true;
        }, null);

    /// <inheritdoc />
    public Task<UserProfile?> GetUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.GetUserProfileAsync(tenantId, userId, cancellationToken), null);

    /// <inheritdoc />
    public Task<bool> SaveSessionStateAsync(string tenantId, string conversationId, string stateJson, long version, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.SaveSessionStateAsync(tenantId, conversationId, stateJson, version, cancellationToken), conversationId);

    /// <inheritdoc />
    public Task<IReadOnlySet<string>> FindToolCallsAsync(string tenantId, string conversationId, IReadOnlyCollection<string> toolCallIds, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.FindToolCallsAsync(tenantId, conversationId, toolCallIds, cancellationToken), conversationId);

    /// <inheritdoc />
    /// <inheritdoc />
    public Task<IReadOnlyList<ConversationStats>> ListConversationsAsync(string tenantId, ConversationFilter filter, ConversationCursor? after, int limit, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.ListConversationsAsync(tenantId, filter, after, limit, cancellationToken), null);

    /// <inheritdoc />
    public Task<ConversationDeletion?> DeleteConversationAsync(string tenantId, string conversationId, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.DeleteConversationAsync(tenantId, conversationId, cancellationToken), conversationId);

    /// <inheritdoc />
    public Task<bool> DeleteUserProfileAsync(string tenantId, string userId, CancellationToken cancellationToken = default) =>
        TraceAsync(() => inner.DeleteUserProfileAsync(tenantId, userId, cancellationToken), null);

    private async Task<T> TraceAsync<T>(Func<Task<T>> call, string? conversationId, [CallerMemberName] string operation = "")
    {
        var name = operation.EndsWith("Async", StringComparison.Ordinal) ? operation[..^5] : operation;
        using var activity = ConversationsTelemetry.Source.StartActivity($"log {name}", ActivityKind.Client);
        activity?.SetTag("db.system", store);
        activity?.SetTag("cloudmemory.conversation_id", conversationId);
        var start = Stopwatch.GetTimestamp();
        try
        {
            return await call();
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw;
        }
        finally
        {
            ConversationsTelemetry.LogCallDuration.Record(Stopwatch.GetElapsedTime(start).TotalMilliseconds,
                new KeyValuePair<string, object?>("operation", name), new KeyValuePair<string, object?>("db.system", store));
        }
    }
}
