using System.Net;
using CloudMemory.Client;
using Microsoft.AspNetCore.Components;

namespace CloudMemory.Dashboard.Components;

/// <summary>
/// A page that reads the API: the caller's client, the render time (where live updates start), and
/// the one way failures show: 401 sends the browser to sign-in, any other refusal is shown with its
/// problem code, never swallowed.
/// </summary>
public abstract class DashboardPage : ComponentBase
{
    /// <summary>The API as the browser's caller.</summary>
    [Inject]
    protected DashboardApi Api { get; set; } = default!;

    /// <summary>Navigation (sign-in redirect, current URL).</summary>
    [Inject]
    protected NavigationManager Navigation { get; set; } = default!;

    /// <summary>The API's refusal, when a read failed.</summary>
    protected string? Error { get; private set; }

    /// <summary>The problem code of <see cref="Error"/>.</summary>
    protected string? ErrorCode { get; private set; }

    /// <summary>When this page was rendered (Unix ms): live updates start here.</summary>
    protected long RenderedAtMs { get; } = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>Runs <paramref name="load"/>; true when it succeeded.</summary>
    protected async Task<bool> LoadAsync(Func<Task> load)
    {
        try
        {
            await load();
            return true;
        }
        catch (CloudMemoryException e) when (e.Status == HttpStatusCode.Unauthorized)
        {
            var back = Uri.EscapeDataString(Navigation.ToAbsoluteUri(Navigation.Uri).PathAndQuery);
            Navigation.NavigateTo($"{DashboardOptions.PathBase}/signin?returnUrl={back}&error={Uri.EscapeDataString("Sign in: the API asks for a credential.")}");
            return false;
        }
        catch (CloudMemoryException e)
        {
            Error = e.Message;
            ErrorCode = e.Code;
            return false;
        }
        catch (HttpRequestException e)
        {
            Error = $"The API at {Api.BaseAddress} could not be reached: {e.Message}";
            ErrorCode = "api-unreachable";
            return false;
        }
    }

    /// <summary>A Unix-seconds time as UTC text.</summary>
    protected static string Time(long unixSeconds) => unixSeconds <= 0 ? "" : DateTimeOffset.FromUnixTimeSeconds(unixSeconds).ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A time as UTC text.</summary>
    protected static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A number in the invariant culture.</summary>
    protected static string N(double value, string format = "0.###") => value.ToString(format, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Escapes one path segment.</summary>
    protected static string Seg(string value) => Uri.EscapeDataString(value);
}
