using System.Globalization;
using System.Text.Json;
using CloudMemory.Client;
using CloudMemory.Dashboard.Components;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CloudMemory.Dashboard;

/// <summary>Registers and maps the dashboard at <c>/ui</c>: the pages, sign-in, its two assets and the live-update relays.</summary>
public static class DashboardEndpoints
{
    /// <summary>Adds the dashboard's services (Razor components in static server rendering, the API client factory).</summary>
    public static IHostApplicationBuilder AddCloudMemoryDashboard(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<DashboardOptions>(builder.Configuration.GetSection(DashboardOptions.SectionName));
        builder.Services.AddRazorComponents();
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddHttpClient(DashboardApi.HttpClientName, http => http.Timeout = Timeout.InfiniteTimeSpan);
        builder.Services.AddScoped<DashboardApi>();
        return builder;
    }

    /// <summary>Maps the dashboard (unless <c>CloudMemory:Dashboard:Enabled</c> is false).</summary>
    public static WebApplication MapCloudMemoryDashboard(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<IOptions<DashboardOptions>>().Value.Enabled)
        {
            return app;
        }
        app.UseAntiforgery();
        var ui = app.MapGroup(DashboardOptions.PathBase).ExcludeFromDescription();
        ui.MapGet("/", () => Results.Redirect(DashboardOptions.PathBase + "/conversations"));
        ui.MapGet("/assets/{name}", Asset);
        ui.MapPost("/signin", SignInAsync);
        ui.MapPost("/signout", SignOut);
        ui.MapGet("/live/events", RelayEventsAsync);
        ui.MapGet("/live/shared-contexts/{id}", RelaySharedChangesAsync);
        app.MapRazorComponents<App>();
        return app;
    }

    /// <summary>The sign-in form's fields.</summary>
    public sealed class SignInForm
    {
        /// <summary>API key or JWT (APIs with authentication).</summary>
        public string? Credential { get; set; }

        /// <summary>Tenant (APIs without authentication).</summary>
        public string? Tenant { get; set; }

        /// <summary>Agent (APIs without authentication).</summary>
        public string? Agent { get; set; }

        /// <summary>Page to go back to.</summary>
        public string? ReturnUrl { get; set; }
    }

    // The credential is tried once against the API before it is kept: a wrong key gets its answer here, not on every page.
    private static async Task<IResult> SignInAsync(HttpContext http, [FromForm] SignInForm form, DashboardApi api)
    {
        var caller = new DashboardCaller(Trim(form.Credential), Trim(form.Tenant), Trim(form.Agent));
        var back = LocalReturnUrl(form.ReturnUrl);
        try
        {
            var client = new CloudMemoryClient(http.RequestServices.GetRequiredService<IHttpClientFactory>().CreateClient(DashboardApi.HttpClientName), api.For(caller));
            await client.ListUserSessionsAsync("dashboard-sign-in", 1, cancellationToken: http.RequestAborted);
        }
        catch (CloudMemoryException e)
        {
            var error = Uri.EscapeDataString($"{(int)e.Status} {e.Code}: the API refused this sign-in.");
            return Results.Redirect($"{DashboardOptions.PathBase}/signin?error={error}&returnUrl={Uri.EscapeDataString(back)}");
        }
        caller.Store(http);
        return Results.Redirect(back);
    }

    private static IResult SignOut(HttpContext http, [FromForm] SignInForm form)
    {
        _ = form;
        DashboardCaller.Clear(http);
        return Results.Redirect(DashboardOptions.PathBase + "/signin");
    }

    private static IResult Asset(string name)
    {
        var contentType = Path.GetExtension(name) switch
        {
            ".css" => "text/css; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            _ => null,
        };
        var stream = contentType is null ? null : typeof(DashboardEndpoints).Assembly.GetManifestResourceStream(name);
        return stream is null ? Results.NotFound() : Results.Stream(stream, contentType);
    }

    /// <summary>
    /// The API's event stream, relayed to the browser's <c>EventSource</c> (which cannot send the
    /// credential itself). Events published before the page was rendered (<c>since</c>, Unix ms) are
    /// skipped; the relay asks the API to replay what it keeps, so an event published while the relay
    /// was still connecting is not lost. Each event is one <c>data:</c> line with its type.
    /// </summary>
    private static async Task RelayEventsAsync(HttpContext http, DashboardApi api, string? topics, string? conversationId, long? since)
    {
        var after = DateTimeOffset.FromUnixTimeMilliseconds(since ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()).AddSeconds(-2);
        var wanted = string.IsNullOrEmpty(topics) ? null : topics.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        await StreamAsync(http, async write =>
        {
            // An id the API does not keep replays every kept event of the filter; the time filter drops the old ones.
            await foreach (var e in api.Client.FollowEventsAsync(wanted, conversationId, lastEventId: "dashboard-relay", http.RequestAborted))
            {
                if (e.CloudEvent.TryGetProperty("time", out var time) && time.TryGetDateTimeOffset(out var at) && at < after)
                {
                    continue;
                }
                await write(e.Type);
            }
        });
    }

    /// <summary>A shared context's change feed after <c>afterSeq</c>, relayed to the browser.</summary>
    private static async Task RelaySharedChangesAsync(HttpContext http, DashboardApi api, string id, long? afterSeq)
    {
        await StreamAsync(http, async write =>
        {
            await foreach (var change in api.SharedContexts.FollowAsync(id, afterSeq ?? 0, http.RequestAborted))
            {
                await write(change.Seq.ToString(CultureInfo.InvariantCulture));
            }
        });
    }

    private static async Task StreamAsync(HttpContext http, Func<Func<string, Task>, Task> follow)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.WriteAsync(": connected\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
        try
        {
            await follow(async data =>
            {
                await http.Response.WriteAsync($"data: {JsonSerializer.Serialize(data)}\n\n", http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
            });
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
        }
        catch (CloudMemoryException e)
        {
            await http.Response.WriteAsync($"event: refused\ndata: {JsonSerializer.Serialize(e.Code)}\n\n", http.RequestAborted);
        }
    }

    private static string? Trim(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    // Only a path of this dashboard: a sign-in form cannot send the browser elsewhere.
    private static string LocalReturnUrl(string? url) =>
        url is { Length: > 0 } && url.StartsWith(DashboardOptions.PathBase + "/", StringComparison.Ordinal) && !url.StartsWith("//", StringComparison.Ordinal) && !url.Contains('\\', StringComparison.Ordinal)
            ? url
            : DashboardOptions.PathBase + "/conversations";
}
