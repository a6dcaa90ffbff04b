using Npgsql;

namespace CloudMemory.Conversations.Log;

/// <summary>A conversation whose history since its last checkpoint is long (a candidate for a checkpoint that never ran).</summary>
/// <param name="TenantId">The tenant.</param>
/// <param name="ConversationId">The conversation.</param>
/// <param name="TurnCount">Turns written (the dynamic policy depends on it).</param>
/// <param name="CheckpointCount">Checkpoints written (the next automatic one is number CheckpointCount + 1).</param>
/// <param name="HistoryUnits">Token units of the history since the checkpoint (<see cref="ConversationStats.HistoryUnits"/>).</param>
public sealed record BacklogConversation(string TenantId, string ConversationId, int TurnCount, int CheckpointCount, long HistoryUnits);

/// <summary>
/// Finds conversations that crossed the checkpoint threshold but have no checkpoint for it: a
/// process killed between a turn and its background checkpoint leaves one behind. Only durable
/// logs that can be queried across conversations implement it (PostgreSQL); an in-memory log dies
/// with the process, and on the Dapr runtime workflows are durable themselves.
/// </summary>
public interface ICheckpointBacklog
{
    /// <summary>
    /// Active (not finalized) conversations updated since <paramref name="updatedSince"/> whose
    /// history holds at least <paramref name="minHistoryUnits"/> token units, at most
    /// <paramref name="limit"/> of them, those updated most recently first.
    /// </summary>
    Task<IReadOnlyList<BacklogConversation>> ListOverAsync(long minHistoryUnits, DateTimeOffset updatedSince, int limit, CancellationToken cancellationToken = default);
}

/// <summary>The backlog query over the PostgreSQL log's running counts (one indexless scan of the conversations table at start).</summary>
public sealed class PostgresCheckpointBacklog(NpgsqlDataSource dataSource) : ICheckpointBacklog
{
    /// <inheritdoc />
    public async Task<IReadOnlyList<BacklogConversation>> ListOverAsync(long minHistoryUnits, DateTimeOffset updatedSince, int limit, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT tenant_id, conversation_id, turn_count, checkpoint_count, units_since + messages_since - 1
            FROM cm_conversations
            WHERE NOT finalized AND messages_since > 0 AND units_since + messages_since - 1 >= $1 AND updated_at >= $2
            ORDER BY updated_at DESC
            LIMIT $3
            """);
        command.Parameters.Add(new() { Value = minHistoryUnits });
        command.Parameters.Add(new() { Value = updatedSince.ToUniversalTime() });
        command.Parameters.Add(new() { Value = limit });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var result = new List<BacklogConversation>();
        while (await reader.ReadAsync(cancellationToken))
        {
            result.Add(new BacklogConversation(reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetInt64(4)));
        }
        return result;
    }
}
