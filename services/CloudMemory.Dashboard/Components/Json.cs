using System.Globalization;
using System.Text.Json;

namespace CloudMemory.Dashboard.Components;

/// <summary>Tolerant reads of the services' JSON answers (a missing or null property reads as empty).</summary>
public static class Json
{
    /// <summary>The property, or an undefined element.</summary>
    public static JsonElement Get(this JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) ? v : default;

    /// <summary>The property as text (numbers and booleans as written), or "".</summary>
    public static string Str(this JsonElement e, string name) => e.Get(name).Text();

    /// <summary>The element as text.</summary>
    public static string Text(this JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString() ?? "",
        JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => e.GetRawText(),
        JsonValueKind.Object or JsonValueKind.Array => e.GetRawText(),
        _ => "",
    };

    /// <summary>The property as a number, or 0.</summary>
    public static double Num(this JsonElement e, string name) =>
        e.Get(name) is { ValueKind: JsonValueKind.Number } n ? n.GetDouble() : 0;

    /// <summary>The property as a boolean (absent: <paramref name="otherwise"/>).</summary>
    public static bool Bool(this JsonElement e, string name, bool otherwise = false) => e.Get(name).ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => otherwise,
    };

    /// <summary>The property's items (an absent or non-array property: none).</summary>
    public static IEnumerable<JsonElement> Items(this JsonElement e, string name) =>
        e.Get(name) is { ValueKind: JsonValueKind.Array } a ? a.EnumerateArray() : [];

    /// <summary>The property's members (an absent or non-object property: none).</summary>
    public static IEnumerable<JsonProperty> Members(this JsonElement e, string name) =>
        e.Get(name) is { ValueKind: JsonValueKind.Object } o ? o.EnumerateObject() : [];

    /// <summary>True when the element holds something.</summary>
    public static bool Has(this JsonElement e) => e.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null);

    /// <summary>The property as a time, or null.</summary>
    public static DateTimeOffset? At(this JsonElement e, string name) =>
        e.Get(name) is { ValueKind: JsonValueKind.String } s && DateTimeOffset.TryParse(s.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : null;
}
