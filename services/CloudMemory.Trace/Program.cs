using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Dapr;

namespace CloudMemory.Trace;

/// <summary>The `trace` app on its own (one Dapr app).</summary>
public sealed class Program
{
    /// <summary>Entry point.</summary>
    public static async Task Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddServiceDefaults();
        builder.AddCloudMemoryRuntime();
        builder.AddTraceServices();

        var app = builder.Build();
        app.UseServiceDefaults();
        app.MapDefaultEndpoints();
        app.MapCloudMemoryRuntime();
        app.MapTraceEndpoints();
        await app.RunAsync();
    }
}
