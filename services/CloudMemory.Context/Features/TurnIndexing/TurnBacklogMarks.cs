using System.Collections.Concurrent;
using CloudMemory.BuildingBlocks.Hosting;
using Npgsql;

namespace CloudMemory.Context.Features.TurnIndexing;

/// <summary>
/// The durable part of the turn backlog: one mark per conversation that has turns written but not
/// yet indexed, set before the first such turn is acknowledged and cleared once they are indexed
/// (per batch, not per turn). After a restart the indexer re-reads the marked conversations from
/// the message log. Implementations: in memory and PostgreSQL; one behavioural suite covers both.
/// </summary>
public interface ITurnBacklogMarks
{
    /// <summary>Marks a conversation; <paramref name="token"/> identifies this mark (a later mark replaces it).</summary>
    Task MarkAsync(string tenantId, string conversationId, string token, CancellationToken cancellationToken = default);

    /// <summary>Clears the marks that still carry the given tokens (a conversation marked again since keeps its new mark).</summary>
    Task ClearAsync(IReadOnlyCollection<TurnBacklogMark> marks, CancellationToken cancellationToken = default);

    /// <summary>Every mark, oldest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<TurnBacklogMark>> ListAsync(int limit, CancellationToken cancellationToken = default);
}

/// <summary>A marked conversation.</summary>
public sealed record TurnBacklogMark(string TenantId, string ConversationId, string Token);

/// <summary>Marks in process memory (the in-memory log does not survive a restart either).</summary>
public sealed class InMemoryTurnBacklogMarks : ITurnBacklogMarks
{
    private readonly ConcurrentDictionary<(string, string), (string Token, long Order)> _marks = new();
    private long _order;

    /// <inheritdoc />
    public Task MarkAsync(string tenantId, string conversationId, string token, CancellationToken cancellationToken = default)
    {
        _marks[(tenantId, conversationId)] = (token, Interlocked.Increment(ref _order));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task ClearAsync(IReadOnlyCollection<TurnBacklogMark> marks, CancellationToken cancellationToken = default)
    {
        foreach (var mark in marks)
        {
            var key = (mark.TenantId, mark.ConversationId);
            if (_marks.TryGetValue(key, out var current) && current.Token == mark.Token)
            {
                _marks.TryRemove(new KeyValuePair<(string, string), (string, long)>(key, current));
            }
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TurnBacklogMark>> ListAsync(int limit, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<TurnBacklogMark>>(_marks.OrderBy(m => m.Value.Order).Take(limit)
            .Select(m => new TurnBacklogMark(m.Key.Item1, m.Key.Item2, m.Value.Token)).ToList());
}

/// <summary>Marks in PostgreSQL (table <c>cm_turn_backlog</c>).</summary>
public sealed class PostgresTurnBacklogMarks(NpgsqlDataSource dataSource) : ITurnBacklogMarks
{
    /// <summary>Creates the table if it does not exist (run at start).</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await dataSource.ApplyAsync("turn-backlog", 1, """
            SELECT pg_advisory_xact_lock(7301016);
            CREATE TABLE IF NOT EXISTS cm_turn_backlog (
                tenant_id text NOT NULL,
                conversation_id text NOT NULL,
                token text NOT NULL,
                marked_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, conversation_id)) WITH (fillfactor = 70);
            """, cancellationToken);
    }

    /// <inheritdoc />
    public async Task MarkAsync(string tenantId, string conversationId, string token, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO cm_turn_backlog (tenant_id, conversation_id, token) VALUES ($1, $2, $3)
            ON CONFLICT (tenant_id, conversation_id) DO UPDATE SET token = EXCLUDED.token
            """);
        command.Parameters.Add(new() { Value = tenantId });
        command.Parameters.Add(new() { Value = conversationId });
        command.Parameters.Add(new() { Value = token });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task ClearAsync(IReadOnlyCollection<TurnBacklogMark> marks, CancellationToken cancellationToken = default)
    {
        if (marks.Count == 0)
        {
            return;
        }
        await using var command = dataSource.CreateCommand("""
            DELETE FROM cm_turn_backlog b USING unnest($1::text[], $2::text[], $3::text[]) AS m(tenant_id, conversation_id, token)
            WHERE b.tenant_id = m.tenant_id AND b.conversation_id = m.conversation_id AND b.token = m.token
            """);
        command.Parameters.Add(new() { Value = marks.Select(m => m.TenantId).ToArray() });
        command.Parameters.Add(new() { Value = marks.Select(m => m.ConversationId).ToArray() });
        command.Parameters.Add(new() { Value = marks.Select(m => m.Token).ToArray() });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<TurnBacklogMark>> ListAsync(int limit, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand("SELECT tenant_id, conversation_id, token FROM cm_turn_backlog ORDER BY marked_at LIMIT $1");
        command.Parameters.Add(new() { Value = limit });
        var marks = new List<TurnBacklogMark>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            marks.Add(new TurnBacklogMark(reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }
        return marks;
    }
}
