using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudMemory.Session.Tests.Infrastructure;

/// <summary>
/// A local OpenAI-compatible chat completions endpoint on loopback (WireMock.Net is not available):
/// records each request and answers with the configured summary, or fails with the configured status.
/// </summary>
public sealed class FakeChatCompletionsServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    public ConcurrentQueue<JsonElement> Requests { get; } = new();

    public ConcurrentQueue<string> Authorizations { get; } = new();

    public string Reply { get; set; } = "Headache for 3 days with fever; advised rest and fluids.";

    public int FailWithStatus { get; set; }

    public Uri Endpoint { get; private set; } = null!;

    private FakeChatCompletionsServer(WebApplication app) => _app = app;

    public static async Task<FakeChatCompletionsServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new FakeChatCompletionsServer(app);
        app.MapPost("/v1/chat/completions", async (HttpContext http) =>
        {
            var body = await JsonDocument.ParseAsync(http.Request.Body);
            server.Requests.Enqueue(body.RootElement.Clone());
            server.Authorizations.Enqueue(http.Request.Headers.Authorization.ToString());
            if (server.FailWithStatus != 0)
            {
                return Results.Json(new { error = new { message = "unavailable", type = "server_error" } }, statusCode: server.FailWithStatus);
            }
            return Results.Json(new
            {
                id = "chatcmpl-1",
                @object = "chat.completion",
                created = 1_700_000_000,
                model = body.RootElement.GetProperty("model").GetString(),
                choices = new[] { new { index = 0, message = new { role = "assistant", content = server.Reply }, finish_reason = "stop" } },
                usage = new { prompt_tokens = 10, completion_tokens = 10, total_tokens = 20 },
            });
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Endpoint = new Uri(address + "/v1");
        return server;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
