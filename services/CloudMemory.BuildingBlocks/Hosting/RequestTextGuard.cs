using System.Buffers;
using System.Text.Unicode;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>
/// One rule for all text that enters through a request body or query string, whatever the
/// endpoint: valid UTF-8 and no U+0000 (PostgreSQL cannot store it in text, and the in-memory
/// stores refuse it too, so both behave the same). A refused request reaches no endpoint.
/// </summary>
public static class RequestTextGuard
{
    /// <summary>Largest body inspected; larger bodies are refused with 413 before any endpoint runs.</summary>
    public const int MaxBodyBytes = 8 * 1024 * 1024;

    /// <summary>Adds the guard to the pipeline.</summary>
    public static WebApplication UseRequestTextGuard(this WebApplication app)
    {
        app.Use(async (http, next) =>
        {
            if (await RefusalAsync(http) is { } problem)
            {
                await problem.ExecuteAsync(http);
                return;
            }
            await next(http);
        });
        return app;
    }

    private static async Task<IResult?> RefusalAsync(HttpContext http)
    {
        // Only the public API: sidecar callbacks carry CloudMemory's own, already validated data.
        if (!http.Request.Path.StartsWithSegments("/v1"))
        {
            return null;
        }
        var query = http.Request.QueryString.Value ?? "";
        if (query.Contains("%00", StringComparison.Ordinal) || query.Contains('\0', StringComparison.Ordinal))
        {
            return NulProblem("the query string");
        }
        if (http.Request.ContentLength is 0 || (http.Request.ContentLength is null && http.Request.Headers.TransferEncoding.Count == 0))
        {
            return null;
        }
        if (http.Request.ContentLength > MaxBodyBytes || await ReadBodyAsync(http) is not { } body)
        {
            return Problems.TooLarge("request-too-large", $"The request body exceeds {MaxBodyBytes} bytes.");
        }
        var bytes = body.GetBuffer().AsSpan(0, (int)body.Length);
        if (!Utf8.IsValid(bytes))
        {
            return Problems.BadRequest("invalid-utf8", "The request body is not valid UTF-8.");
        }
        if (ContainsNul(bytes))
        {
            return NulProblem("the request body");
        }
        body.Position = 0;
        http.Request.Body = body;
        http.Response.RegisterForDispose(body);
        return null;
    }

    // The body in one array of its declared length when it has one (the common case: one allocation
    // of the body's size per request), else copied through a pooled buffer up to the limit.
    private static async Task<MemoryStream?> ReadBodyAsync(HttpContext http)
    {
        if (http.Request.ContentLength is { } length)
        {
            var content = new byte[length];
            await http.Request.Body.ReadExactlyAsync(content, http.RequestAborted);
            return new MemoryStream(content, 0, content.Length, writable: false, publiclyVisible: true);
        }
        var body = new MemoryStream();
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await http.Request.Body.ReadAsync(buffer, http.RequestAborted)) > 0)
            {
                if (body.Length + read > MaxBodyBytes)
                {
                    return null;
                }
                body.Write(buffer, 0, read);
            }
            return body;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static IResult NulProblem(string where) =>
        Problems.BadRequest("nul-character", $"U+0000 (NUL) is not allowed in {where}: no text CloudMemory stores may contain it.");

    /// <summary>A raw NUL byte, or a JSON escape <c>\u0000</c> that is not itself escaped.</summary>
    internal static bool ContainsNul(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Contains((byte)0))
        {
            return true;
        }
        for (var i = bytes.IndexOf("\\u0000"u8); i >= 0;)
        {
            var backslashes = 0;
            for (var j = i; j >= 0 && bytes[j] == (byte)'\\'; j--)
            {
                backslashes++;
            }
            if (backslashes % 2 == 1)
            {
                return true;
            }
            var next = bytes[(i + 1)..].IndexOf("\\u0000"u8);
            i = next < 0 ? -1 : i + 1 + next;
        }
        return false;
    }
}
