using System.Text.Json;
using System.Text.Json.Serialization;
using CloudMemory.Contracts;

namespace CloudMemory.Dapr;

/// <summary>JSON for what CloudMemory itself writes to daprd: CloudMemory's settings, nulls left out.</summary>
public static class DaprJson
{
    /// <summary>The options (read-only).</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        // daprd treats an absent and a null property differently in places.
        var options = new JsonSerializerOptions(ContractsJson.Options) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
