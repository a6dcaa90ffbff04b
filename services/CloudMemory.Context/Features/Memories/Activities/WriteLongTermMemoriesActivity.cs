using Dapr.Workflow;
using Microsoft.Extensions.Hosting;

namespace CloudMemory.Context.Features.Memories.Activities;

/// <summary>Upserts the planned entries; safe to retry because every id is deterministic.</summary>
public sealed class WriteLongTermMemoriesActivity(ILongTermMemory memory, IHostApplicationLifetime lifetime) : WorkflowActivity<ConsolidationPlan, IReadOnlyList<string>>
{
    /// <inheritdoc />
    public override async Task<IReadOnlyList<string>> RunAsync(WorkflowActivityContext context, ConsolidationPlan input)
    {
        var ids = new List<string>(input.Entries.Count);
        foreach (var entry in input.Entries)
        {
            var written = await memory.UpsertAsync(input.TenantId, entry, lifetime.ApplicationStopping);
            ids.Add(written.Id);
        }
        return ids;
    }
}
