using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Dapr;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback;

/// <summary>The `feedback` app on its own (one Dapr app).</summary>
public sealed class Program
{
    /// <summary>Entry point.</summary>
    public static async Task Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddServiceDefaults();
        builder.AddCloudMemoryRuntime();
        builder.AddFeedbackServices();

        var app = builder.Build();
        app.UseServiceDefaults();
        app.MapDefaultEndpoints();
        app.MapCloudMemoryRuntime();
        app.MapFeedbackEndpoints();
        await app.RunAsync();
    }
}
