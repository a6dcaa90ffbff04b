using System.Diagnostics;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Conversations.Compression;
using CloudMemory.Conversations.Log;
using CloudMemory.Conversations.Text;

namespace CloudMemory.Context.Features.Query;

/// <summary>
/// The <c>compression: importance</c> step of QueryMemoryContext: when the history (the full one
/// in FULL_HISTORY, the window in SUMMARY_N) reaches <see cref="CompressionOptions.TriggerRatio"/>
/// of the budget, it is compressed to at most <see cref="CompressionOptions.TargetRatio"/> of its
/// tokens (and never above the budget) instead of losing its oldest turns whole. The checkpoint
/// summary, when there is one, stays in front as it was.
/// </summary>
public static class ContextCompressor
{
    /// <summary>The method asked for, or the configured default; 400 <c>invalid-compression</c> otherwise.</summary>
    public static string Parse(string? requested, CompressionOptions options) => requested?.ToLowerInvariant() switch
    {
        null or "" => options.Default,
        CompressionOptions.None => CompressionOptions.None,
        CompressionOptions.Importance => CompressionOptions.Importance,
        _ => throw new ProblemException(400, "invalid-compression", "'compression' must be 'none' or 'importance'."),
    };

    /// <summary>
    /// The context compressed when it reached the trigger, and what was done. With a
    /// <paramref name="rewriter"/> (an LLM is configured) the condensed messages are rewritten by the
    /// model, each line checked; if the model fails, the extractive result is returned as it is.
    /// </summary>
    public static async Task<(FittedContext Context, ContextCompression Report)> ApplyAsync(MessageCompressor compressor, CompressionOptions options, FittedContext fitted,
        MemoryMode mode, SessionValue session, HistorySegment segment, long availableUnits, long summaryBudgetUnits,
        LlmCompressionRewriter? rewriter = null, TimeSpan? rewriteTimeout = null, CancellationToken cancellationToken = default)
    {
        var summary = mode == MemoryMode.SummaryN ? ContextFit.TruncateToUnits(session.MessageContext.Summary.Trim(), summaryBudgetUnits) : null;
        // The segment's messages and their units are computed once per segment (the in-memory log reuses it between turns).
        var source = mode == MemoryMode.SummaryN ? session.MessageContext.WindowMessages : segment.ChatMessages;
        var summaryUnits = summary is null ? 0 : TokenEstimator.Units(ConversationText.RenderMessage(ContextFit.SummaryMessage(summary))) + 1;
        var sourceUnits = source.Count == 0 ? 0 : mode == MemoryMode.SummaryN ? TokenEstimator.Units(ConversationText.RenderMessages(source)) : segment.ChatMessageUnits;
        var tokens = TokenEstimator.TokensFromUnits(sourceUnits);
        if (source.Count == 0 || summaryUnits + sourceUnits < options.TriggerRatio * availableUnits)
        {
            return (fitted, new ContextCompression(CompressionOptions.Importance, Applied: false, tokens, tokens, source.Count, 0, []));
        }
        // The context's budget is counted by the estimator, as everywhere on the query path (on prose
        // about 13 % above o200k); the ratio by the compressor's counter, the model's tokenizer by
        // default: condensed text, which the estimator over-counts, then fills the model's tokens.
        var limit = Math.Max(1, availableUnits - summaryUnits);
        var estimatedTarget = Math.Max(1, Math.Min((long)(options.TargetRatio * sourceUnits), limit));
        var safetyTerms = session.UserSnapshot.Allergies.Concat(session.UserSnapshot.ChronicDiseases).Where(t => !string.IsNullOrWhiteSpace(t)).ToList();
        // Scored once; the budgets tried below only select again.
        var prepared = compressor.Prepare(source, safetyTerms);
        var counted = prepared.OriginalUnits;
        // The budget in the counter's units, as this history converts: a first guess the checks below correct.
        var target = Math.Max(1, Math.Min((long)(options.TargetRatio * counted), (long)(limit * ((double)counted / Math.Max(1, sourceUnits)))));
        var result = compressor.Compress(prepared, target);
        if (Estimated(result) is var estimated && estimated > limit)
        {
            // The budget binds before the ratio: once more with the target scaled to it, then counted by the estimator itself.
            target = Math.Max(1, (long)(target * ((double)limit / estimated) * 0.97));
            result = compressor.Compress(prepared, target);
            if (Estimated(result) > limit && !ReferenceEquals(prepared.Counter, TokenCounters.Estimator))
            {
                (prepared, target) = (compressor.Prepare(source, safetyTerms, TokenCounters.Estimator), estimatedTarget);
                result = compressor.Compress(prepared, target);
            }
        }
        var rewrittenBy = "extractive";
        if (rewriter is not null && result.Condensed > 0)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(rewriteTimeout ?? TimeSpan.FromSeconds(30));
                var (rewritten, count) = await rewriter.RewriteAsync(source, result, target, prepared.Counter, timeout.Token);
                if (Estimated(rewritten) <= limit)
                {
                    (result, rewrittenBy) = (rewritten, count > 0 ? "llm" : "extractive");
                }
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                Activity.Current?.AddException(ex);
                rewrittenBy = "extractive (llm failed)";
            }
        }
        var report = ReferenceEquals(prepared.Counter, compressor.Counter) ? result : result with
        {
            // Counted by the estimator to fit the budget; reported, like every count, in the configured tokenizer's tokens.
            OriginalUnits = counted,
            KeptUnits = compressor.Counter.JoinedUnits(result.Messages.Select(ConversationText.RenderMessage)),
            Dropped = result.Dropped.Select(d => d with { Tokens = TokenEstimator.TokensFromUnits(compressor.Counter.Units(ConversationText.RenderMessage(source[d.Index]))) }).ToList(),
        };
        var window = result.Messages.ToList();
        var messages = new List<ChatMessage>(window.Count + 1);
        string history;
        if (summary is not null)
        {
            messages.Add(ContextFit.SummaryMessage(summary));
            history = ConversationText.ComposeSummaryAndRecent(summary, window);
        }
        else
        {
            history = ConversationText.RenderMessages(window);
        }
        messages.AddRange(window);
        var units = Math.Max(TokenEstimator.Units(history), TokenEstimator.Units(ConversationText.RenderMessages(messages)));
        var compressed = new FittedContext(summary, messages, window, history, units, Trimmed: result.Dropped.Count > 0 || result.Condensed > 0);
        return (compressed, new ContextCompression(CompressionOptions.Importance, Applied: true, report.OriginalTokens, report.KeptTokens,
            result.Verbatim, result.Condensed, report.Dropped, rewrittenBy));
    }

    // The estimator's units of a compressed history (what the budget is counted in).
    private static long Estimated(CompressionResult result) => TokenEstimator.Units(ConversationText.RenderMessages(result.Messages));
}
