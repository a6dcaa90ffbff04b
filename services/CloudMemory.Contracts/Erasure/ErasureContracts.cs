namespace CloudMemory.Contracts.Erasure;

/// <summary>Well-known keys of erasure counts (each service adds the ones it holds).</summary>
public static class ErasureCountKeys
{
    /// <summary>Conversations (log headers) removed.</summary>
    public const string Conversations = "conversations";

    /// <summary>Log messages (turns and checkpoints) removed.</summary>
    public const string Messages = "messages";

    /// <summary>Checkpoint messages among them.</summary>
    public const string Checkpoints = "checkpoints";

    /// <summary>Cached session values removed.</summary>
    public const string Sessions = "sessions";

    /// <summary>Durable user profiles removed.</summary>
    public const string Profiles = "profiles";

    /// <summary>Long-term memories removed.</summary>
    public const string Memories = "memories";

    /// <summary>Trace steps removed.</summary>
    public const string Traces = "traces";

    /// <summary>Feedback records removed.</summary>
    public const string Feedback = "feedback";

    /// <summary>Experiences (experience database) of erased conversations or users removed.</summary>
    public const string Experiences = "experiences";

    /// <summary>Stored copies of events (the event stream's replay buffer) removed.</summary>
    public const string Events = "events";

    /// <summary>Shared contexts created from an erased conversation (document and change log) removed.</summary>
    public const string SharedContexts = "sharedContexts";
}

/// <summary>
/// Body of a service's internal erase endpoint (<c>POST /internal/v1/erasure</c>): remove what the
/// service holds of <see cref="UserId"/> (when set) and of the conversations <see cref="ConversationIds"/>.
/// </summary>
public sealed record ErasureRequest(string? UserId, IReadOnlyList<string> ConversationIds);

/// <summary>What one service removed, by <see cref="ErasureCountKeys"/> key.</summary>
public sealed record ErasureCounts(IReadOnlyDictionary<string, long> Counts);

/// <summary>Answer of <c>DELETE /v1/users/{userId}</c>: what was erased, summed over every service.</summary>
/// <param name="UserId">The user.</param>
/// <param name="ErasedAt">When the erasure finished.</param>
/// <param name="Counts">Items removed per kind (<see cref="ErasureCountKeys"/>).</param>
/// <param name="Services">The services that answered, with their own counts.</param>
public sealed record ErasureReport(string UserId, DateTimeOffset ErasedAt, IReadOnlyDictionary<string, long> Counts, IReadOnlyDictionary<string, IReadOnlyDictionary<string, long>> Services);
