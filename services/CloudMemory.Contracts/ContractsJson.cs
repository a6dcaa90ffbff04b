using System.Text.Json;
using System.Text.Json.Serialization;

namespace CloudMemory.Contracts;

/// <summary>The JSON settings of every CloudMemory wire shape: camelCase, enums as strings.</summary>
public static class ContractsJson
{
    /// <summary>Shared, immutable options.</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    /// <summary>Applies CloudMemory's settings to an options instance (e.g. ASP.NET Core's).</summary>
    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.DictionaryKeyPolicy = null;
        options.PropertyNameCaseInsensitive = true;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.TypeInfoResolver ??= new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver();
        return options;
    }

    private static JsonSerializerOptions Create()
    {
        var options = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
