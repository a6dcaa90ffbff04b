namespace CloudMemory.Dashboard.App;

/// <summary>
/// The dashboard on its own, in front of CloudMemory's API elsewhere (the Dapr apps behind a
/// gateway, or an embedded host): <c>CloudMemory__Dashboard__ApiBaseUrl=http://gateway:8080 dotnet run</c>.
/// </summary>
public sealed class Program
{
    /// <summary>Entry point.</summary>
    public static void Main(string[] args) => Build(args).Run();

    /// <summary>Composes the app (tests host it in process).</summary>
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        if (builder.Configuration[$"{DashboardOptions.SectionName}:ApiBaseUrl"] is not { Length: > 0 } api || !Uri.TryCreate(api, UriKind.Absolute, out _))
        {
            throw new InvalidOperationException($"Set {DashboardOptions.SectionName}:ApiBaseUrl (e.g. CloudMemory__Dashboard__ApiBaseUrl=http://localhost:5080) to the CloudMemory API this dashboard reads.");
        }
        builder.AddCloudMemoryDashboard();
        var app = builder.Build();
        app.MapGet("/", () => Results.Redirect(DashboardOptions.PathBase + "/conversations"));
        app.MapCloudMemoryDashboard();
        return app;
    }
}
