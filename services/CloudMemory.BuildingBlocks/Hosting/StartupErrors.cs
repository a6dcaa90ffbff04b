using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CloudMemory.BuildingBlocks.Hosting;

/// <summary>A configuration value the service cannot start with: names the key, the value and what is allowed.</summary>
public sealed class StartupConfigurationException(string key, string? value, string allowed)
    : InvalidOperationException($"Configuration '{key}' is '{value}'; allowed: {allowed}.")
{
    /// <summary>The configuration key.</summary>
    public string Key { get; } = key;
}

/// <summary>Runs a service so that a bad configuration ends it with one clear line and exit code 2, not a stack trace.</summary>
public static class StartupErrors
{
    /// <summary>Exit code of a configuration error.</summary>
    public const int ConfigurationExitCode = 2;

    /// <summary>Builds and runs the app; returns the process exit code.</summary>
    public static async Task<int> RunAsync(Func<WebApplication> build)
    {
        try
        {
            var app = build();
            // Options validated on start are checked here, before the host logs a failed start with a stack trace.
            app.Services.GetService<IStartupValidator>()?.Validate();
            await app.RunAsync();
            return 0;
        }
        catch (Exception ex) when (Describe(ex) is { } message)
        {
            await Console.Error.WriteLineAsync($"CloudMemory cannot start: {message}");
            return ConfigurationExitCode;
        }
    }

    /// <summary>The one-line description of a configuration error, or null for any other failure.</summary>
    public static string? Describe(Exception exception) => exception switch
    {
        StartupConfigurationException config => config.Message,
        OptionsValidationException options => string.Join(" ", options.Failures),
        // The binder's own message names the key and the type it expected.
        InvalidOperationException { Message: var m } when m.StartsWith("Failed to convert configuration value", StringComparison.Ordinal) =>
            exception.InnerException is { } inner ? $"{m} ({inner.Message})" : m,
        AggregateException aggregate when aggregate.InnerExceptions.Select(Describe).ToList() is { } inner && inner.All(m => m is not null) =>
            string.Join(" ", inner),
        _ => null,
    };
}
