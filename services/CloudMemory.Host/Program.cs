using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Context;
using CloudMemory.Dashboard;
using CloudMemory.Dapr;
#if CLOUDMEMORY_ONNX
using CloudMemory.Embeddings.Onnx;
#endif
using CloudMemory.Feedback;
using CloudMemory.Session;
using CloudMemory.Trace;

namespace CloudMemory.Host;

/// <summary>All four CloudMemory services in one process: the zero-setup way to run it.</summary>
public sealed class Program
{
    /// <summary>Entry point.</summary>
    public static Task<int> Main(string[] args) => StartupErrors.RunAsync(() => Build(args));

    /// <summary>Composes the embedded host (also used by benchmarks and tools that host it in process).</summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddServiceDefaults();
        builder.AddCloudMemoryRuntime();
        builder.AddContextServices();
        builder.AddSessionServices();
        builder.AddTraceServices();
        builder.AddFeedbackServices();
        builder.AddCloudMemoryDashboard();
#if CLOUDMEMORY_ONNX
        // Opt-in (CloudMemory:Embeddings:Provider=onnx) until it measures better than local: docs/benchmarks.md.
        builder.Services.AddOnnxEmbeddings(builder.Configuration, isDefault: false);
#endif
        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseServiceDefaults();
        app.MapDefaultEndpoints();
        app.MapCloudMemoryRuntime();
        app.MapContextEndpoints();
        app.MapSessionEndpoints();
        app.MapTraceEndpoints();
        app.MapFeedbackEndpoints();
        app.MapCloudMemoryDashboard();
        return app;
    }
}
