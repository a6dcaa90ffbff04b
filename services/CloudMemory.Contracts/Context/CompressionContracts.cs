namespace CloudMemory.Contracts.Context;

/// <summary>What the context's compression did (<c>compression</c> of <c>POST /v1/context/query</c>).</summary>
/// <param name="Method"><c>importance</c> or <c>none</c>.</param>
/// <param name="Applied">True when the history reached the trigger (90% of the budget) and was compressed.</param>
/// <param name="OriginalTokens">Estimated tokens of the history before.</param>
/// <param name="KeptTokens">Estimated tokens after.</param>
/// <param name="Verbatim">Messages kept word for word.</param>
/// <param name="Condensed">Messages reduced to their selected sentences.</param>
/// <param name="Dropped">Messages left out, each with its importance and why.</param>
/// <param name="Rewriter">Who wrote the condensed messages: <c>extractive</c>, <c>llm</c> (the configured model rewrote them; every line checked), or <c>extractive (llm failed)</c>.</param>
public sealed record ContextCompression(string Method, bool Applied, int OriginalTokens, int KeptTokens, int Verbatim, int Condensed, IReadOnlyList<DroppedMessage> Dropped,
    string? Rewriter = null);

/// <summary>A message left out of a compressed history.</summary>
/// <param name="Index">Its position in the history before compression (0 = oldest).</param>
/// <param name="Role">Who said it.</param>
/// <param name="Name">The participant's name, when set.</param>
/// <param name="Tokens">Its estimated tokens.</param>
/// <param name="Importance">Its importance score in [0, 1].</param>
/// <param name="Why">Why it scored so.</param>
public sealed record DroppedMessage(int Index, string Role, string? Name, int Tokens, double Importance, string Why);
