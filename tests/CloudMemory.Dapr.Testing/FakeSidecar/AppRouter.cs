using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;

namespace CloudMemory.Dapr.Tests.FakeSidecar;

/// <summary>
/// Sends each request to the app that serves its route, as an ingress in front of the Dapr apps
/// would: the route table is read from the apps' own endpoints (so it cannot drift from them).
/// A path no app serves goes to the app whose routes share its longest leading literal prefix
/// (which then answers 404 or 405 itself), or to the first app.
/// </summary>
public sealed class AppRouter : DelegatingHandler
{
    private readonly List<Route> _routes;
    private readonly Uri _fallback;

    public AppRouter(IEnumerable<DaprTestApp> apps)
        // Header values go out as UTF-8 bytes, as any client on a socket can send them (HttpClient's default refuses non-ASCII).
        : base(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, RequestHeaderEncodingSelector = (_, _) => System.Text.Encoding.UTF8 })
    {
        var list = apps.ToList();
        _fallback = list[0].AppBase;
        // The app's composite data source (what its routing uses): its endpoints are built once, not on every read.
        _routes = [.. list.SelectMany(app => app.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Select(endpoint => new Route(app.AppBase, endpoint.RoutePattern, endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods)))];
    }

    /// <summary>An <see cref="HttpClient"/> over the router; relative URLs resolve against a placeholder base.</summary>
    public static HttpClient CreateClient(IEnumerable<DaprTestApp> apps) =>
        new(new AppRouter(apps)) { BaseAddress = new Uri("http://cloudmemory.test/"), Timeout = Wait.Timeout };

    /// <summary>The base address of the app that serves <paramref name="method"/> <paramref name="path"/> (raw, escaped path).</summary>
    public Uri AppFor(string method, string path)
    {
        var segments = path.Trim('/').Split('/');
        Route? best = null;
        var bestScore = -1;
        foreach (var route in _routes)
        {
            var score = route.Score(method, segments);
            if (score > bestScore)
            {
                best = route;
                bestScore = score;
            }
        }
        return bestScore > 0 ? best!.App : _fallback;
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var uri = request.RequestUri!;
        var app = AppFor(request.Method.Method, uri.AbsolutePath);
        // PathAndQuery stays escaped: the app sees exactly the path the caller sent.
        request.RequestUri = new Uri(app.GetLeftPart(UriPartial.Authority) + uri.PathAndQuery);
        return base.SendAsync(request, cancellationToken);
    }

    private sealed record Route(Uri App, RoutePattern Pattern, IReadOnlyList<string>? Methods)
    {
        // A full match scores above any prefix match; among full matches literal segments win over
        // parameters and a matching method wins over a 405.
        public int Score(string method, string[] segments)
        {
            var pattern = Pattern.PathSegments;
            var catchAll = pattern.Count > 0 && pattern[^1].Parts.Any(p => p is RoutePatternParameterPart { IsCatchAll: true });
            var prefix = 0;
            var literals = 0;
            var full = true;
            for (var i = 0; i < Math.Max(pattern.Count, segments.Length); i++)
            {
                if (i >= pattern.Count || i >= segments.Length)
                {
                    full = catchAll && i >= pattern.Count - 1;
                    break;
                }
                var part = pattern[i];
                if (part.IsSimple && part.Parts[0] is RoutePatternLiteralPart literal)
                {
                    if (!string.Equals(literal.Content, Uri.UnescapeDataString(segments[i]), StringComparison.OrdinalIgnoreCase))
                    {
                        full = false;
                        break;
                    }
                    literals++;
                }
                else if (segments[i].Length == 0)
                {
                    full = false;
                    break;
                }
                if (full)
                {
                    prefix++;
                }
            }
            if (!full)
            {
                return literals > 0 ? prefix : 0;
            }
            var methodMatches = Methods is null || Methods.Contains(method, StringComparer.OrdinalIgnoreCase);
            return 10_000 + (methodMatches ? 1_000 : 0) + literals;
        }
    }
}
