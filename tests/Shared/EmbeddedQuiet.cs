using CloudMemory.BuildingBlocks.Embedded;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Context.Features.TurnIndexing;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Testing;

/// <summary>Waits for an embedded host's background work: event deliveries, workflows, turn indexing and embeddings.</summary>
public static class EmbeddedQuiet
{
    /// <summary>Returns once nothing is in flight; throws with what is still busy after <paramref name="timeout"/>.</summary>
    public static async Task WhenQuietAsync(IServiceProvider services, TimeSpan timeout)
    {
        var bus = services.GetRequiredService<InMemoryEventBus>();
        var runner = services.GetRequiredService<EmbeddedWorkflowRunner>();
        var turns = services.GetRequiredService<TurnIndexer>();
        var embeddings = services.GetService<EmbeddingPipeline>();
        var deadline = DateTime.UtcNow + timeout;
        while (bus.InFlight > 0 || turns.Backlog > 0 || runner.RunningCount > 0 || embeddings?.Outstanding > 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"still busy: {bus.InFlight} deliveries, {turns.Backlog} turns to index, {runner.RunningCount} workflows, {embeddings?.Outstanding ?? 0} embeddings");
            }
            await Task.Delay(10);
        }
    }
}
