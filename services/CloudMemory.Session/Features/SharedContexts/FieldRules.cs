using System.Text.Json;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Contracts;

namespace CloudMemory.Session.Features.SharedContexts;

/// <summary>Why a field change was refused; a 409 carries the field's current value and version.</summary>
public sealed record FieldRefusal(int Status, string Code, string Detail, string Field, bool WithCurrent = false);

/// <summary>
/// What each conflict policy does with each operation, and the write guards. Pure functions: the
/// actor applies a whole request only when every field's change is accepted.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>reject</c>: <c>set</c> is refused (409) when the field changed after the request's base version.</item>
/// <item><c>last-writer-wins</c>: <c>set</c> always applies.</item>
/// <item><c>append</c>: <c>add</c> appends (an array operand appends each item); <c>set</c> as with reject.</item>
/// <item><c>counter</c>: <c>increment</c> adds; <c>set</c> as with reject.</item>
/// <item><c>set-union</c>: an observed-remove set: <c>add</c> tags elements with the new version, <c>remove</c> drops only
/// the tags its writer could have seen (at or before its base version), so a concurrent add survives a remove.</item>
/// <item><c>max</c> / <c>min</c>: <c>set</c> keeps the larger / smaller of the current and the new value.</item>
/// <item><c>map-merge</c>: <c>set</c> merges an object's keys (a null value deletes the key); <c>remove</c> deletes keys.</item>
/// </list>
/// An <c>appendOnly</c> field accepts only <c>add</c>. Every resulting value must satisfy the field's schema.
/// </remarks>
public static class FieldRules
{
    /// <summary>Largest serialized value of one field.</summary>
    public const int MaxValueBytes = 64 * 1024;

    private static readonly JsonElement Null = JsonSerializer.SerializeToElement<object?>(null);

    /// <summary>The one operation of a change; throws a 400 problem when there is none or more than one.</summary>
    public static (string Op, JsonElement Operand) Operation(string field, FieldChange? change)
    {
        if (change is null)
        {
            throw new ProblemException(400, "invalid-change", $"Field '{field}': the change must be an object with one of set, add, remove, increment.");
        }
        var ops = new List<(string, JsonElement)>(1);
        if (change.Set.ValueKind != JsonValueKind.Undefined) { ops.Add(("set", change.Set)); }
        if (change.Add.ValueKind != JsonValueKind.Undefined) { ops.Add(("add", change.Add)); }
        if (change.Remove.ValueKind != JsonValueKind.Undefined) { ops.Add(("remove", change.Remove)); }
        if (change.Increment.ValueKind != JsonValueKind.Undefined) { ops.Add(("increment", change.Increment)); }
        return ops.Count == 1
            ? ops[0]
            : throw new ProblemException(400, "invalid-change", $"Field '{field}': give exactly one of set, add, remove, increment.");
    }

    /// <summary>Refuses an operation the field's policy (or append-only guard) does not allow.</summary>
    public static FieldRefusal? Allowed(string name, SharedField field, string op)
    {
        if (field.AppendOnly && op != "add")
        {
            return new(403, "append-only-field", $"Field '{name}' is append-only: only 'add' is allowed.", name);
        }
        var allowed = field.Conflict switch
        {
            "reject" or "last-writer-wins" or "max" or "min" => op == "set",
            "append" => op is "add" or "set",
            "counter" => op is "increment" or "set",
            "set-union" => op is "add" or "remove" or "set",
            "map-merge" => op is "set" or "remove",
            _ => false,
        };
        return allowed ? null : new(400, "operation-not-allowed", $"Field '{name}' ({field.Conflict}) does not accept '{op}'.", name);
    }

    /// <summary>
    /// Applies one change to a copy of <paramref name="field"/>, producing version
    /// <paramref name="newVersion"/>; returns the new field and its diff, or the refusal.
    /// </summary>
    public static (SharedField? Next, FieldDiff? Diff, FieldRefusal? Refusal) Apply(string name, SharedField field, FieldChange change, long baseVersion, long newVersion)
    {
        var (op, operand) = Operation(name, change);
        if (Allowed(name, field, op) is { } refused)
        {
            return (null, null, refused);
        }
        var stale = field.Version > baseVersion;
        var tags = field.Tags is null ? null : field.Tags.ToDictionary(kv => kv.Key, kv => kv.Value.ToList(), StringComparer.Ordinal);
        JsonElement value;
        switch (field.Conflict, op)
        {
            case (_, "set") when field.Conflict is "reject" or "append" or "counter" or "set-union":
                if (stale)
                {
                    return (null, null, new(409, "version-conflict",
                        $"Field '{name}' changed at version {field.Version}, after your base version {baseVersion}; read it again and retry.", name, WithCurrent: true));
                }
                value = operand;
                if (field.Conflict == "set-union")
                {
                    if (operand.ValueKind != JsonValueKind.Array)
                    {
                        return (null, null, Invalid(name, "a set-union field is set to an array"));
                    }
                    tags = new Dictionary<string, List<long>>(StringComparer.Ordinal);
                    foreach (var item in operand.EnumerateArray())
                    {
                        tags.TryAdd(Key(item), [newVersion]);
                    }
                    value = Elements(tags);
                }
                break;
            case ("last-writer-wins", "set"):
                value = operand;
                break;
            case ("max" or "min", "set"):
                var current = field.Value;
                if (current.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
                {
                    value = operand;
                    break;
                }
                if (Compare(current, operand) is not { } order)
                {
                    return (null, null, Invalid(name, $"a {field.Conflict} field compares numbers with numbers or strings with strings"));
                }
                value = (field.Conflict == "max" ? order < 0 : order > 0) ? operand : current;
                break;
            case ("append", "add"):
                var list = field.Value.ValueKind == JsonValueKind.Array ? field.Value.EnumerateArray().ToList() : [];
                list.AddRange(operand.ValueKind == JsonValueKind.Array ? operand.EnumerateArray() : [operand]);
                value = JsonSerializer.SerializeToElement(list, ContractsJson.Options);
                break;
            case ("counter", "increment"):
                if (operand.ValueKind != JsonValueKind.Number)
                {
                    return (null, null, Invalid(name, "'increment' takes a number"));
                }
                value = Add(field.Value, operand);
                break;
            case ("set-union", "add"):
                tags ??= new Dictionary<string, List<long>>(StringComparer.Ordinal);
                foreach (var item in operand.ValueKind == JsonValueKind.Array ? operand.EnumerateArray() : (IEnumerable<JsonElement>)[operand])
                {
                    var key = Key(item);
                    if (!tags.TryGetValue(key, out var itemTags))
                    {
                        tags[key] = itemTags = [];
                    }
                    if (!itemTags.Contains(newVersion))
                    {
                        itemTags.Add(newVersion);
                    }
                }
                value = Elements(tags);
                break;
            case ("set-union", "remove"):
                tags ??= new Dictionary<string, List<long>>(StringComparer.Ordinal);
                foreach (var item in operand.ValueKind == JsonValueKind.Array ? operand.EnumerateArray() : (IEnumerable<JsonElement>)[operand])
                {
                    var key = Key(item);
                    if (tags.TryGetValue(key, out var itemTags))
                    {
                        // Observed remove: only the adds the writer could have seen go.
                        itemTags.RemoveAll(tag => tag <= baseVersion);
                        if (itemTags.Count == 0)
                        {
                            tags.Remove(key);
                        }
                    }
                }
                value = Elements(tags);
                break;
            case ("map-merge", "set"):
                if (operand.ValueKind != JsonValueKind.Object)
                {
                    return (null, null, Invalid(name, "a map-merge field merges an object"));
                }
                var merged = MapOf(field.Value);
                foreach (var property in operand.EnumerateObject())
                {
                    if (property.Value.ValueKind == JsonValueKind.Null)
                    {
                        merged.Remove(property.Name);
                    }
                    else
                    {
                        merged[property.Name] = property.Value;
                    }
                }
                value = JsonSerializer.SerializeToElement(merged, ContractsJson.Options);
                break;
            case ("map-merge", "remove"):
                var map = MapOf(field.Value);
                foreach (var key in operand.ValueKind == JsonValueKind.Array ? operand.EnumerateArray() : (IEnumerable<JsonElement>)[operand])
                {
                    if (key.ValueKind != JsonValueKind.String)
                    {
                        return (null, null, Invalid(name, "'remove' on a map-merge field takes key names"));
                    }
                    map.Remove(key.GetString()!);
                }
                value = JsonSerializer.SerializeToElement(map, ContractsJson.Options);
                break;
            default:
                return (null, null, new(400, "operation-not-allowed", $"Field '{name}' ({field.Conflict}) does not accept '{op}'.", name));
        }
        if (Validate(field.Schema, value, name) is { } error)
        {
            return (null, null, Invalid(name, error));
        }
        if (value.GetRawText().Length > MaxValueBytes)
        {
            return (null, null, new(413, "field-too-large", $"Field '{name}' would exceed {MaxValueBytes} bytes.", name));
        }
        var next = new SharedField
        {
            Value = value.Clone(),
            Conflict = field.Conflict,
            Schema = field.Schema,
            AppendOnly = field.AppendOnly,
            Version = newVersion,
            Tags = tags,
        };
        return (next, new FieldDiff(op, field.Value, next.Value), null);
    }

    /// <summary>Creates a field at version 1, or throws a 400 problem when the value does not fit its policy or schema.</summary>
    public static SharedField Create(string name, JsonElement value, string? conflict, FieldSchema? schema, bool appendOnly, long version)
    {
        conflict ??= "reject";
        if (!Shared.ConflictPolicies.Contains(conflict))
        {
            throw new ProblemException(400, "invalid-conflict", $"Field '{name}': conflict must be one of {string.Join(", ", Shared.ConflictPolicies)}.");
        }
        if (appendOnly && conflict is not ("append" or "set-union"))
        {
            throw new ProblemException(400, "invalid-appendOnly", $"Field '{name}': only append and set-union fields can be append-only.");
        }
        if (value.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            value = conflict switch
            {
                "append" or "set-union" => JsonSerializer.SerializeToElement(Array.Empty<object>()),
                "counter" => JsonSerializer.SerializeToElement(0),
                "map-merge" => JsonSerializer.SerializeToElement(new Dictionary<string, object>()),
                _ => Null,
            };
        }
        var expected = conflict switch
        {
            "append" or "set-union" => JsonValueKind.Array,
            "counter" => JsonValueKind.Number,
            "map-merge" => JsonValueKind.Object,
            _ => value.ValueKind,
        };
        if (value.ValueKind != expected)
        {
            throw new ProblemException(400, "field-invalid", $"Field '{name}': a {conflict} field holds a JSON {expected.ToString().ToLowerInvariant()}.");
        }
        Dictionary<string, List<long>>? tags = null;
        if (conflict == "set-union")
        {
            tags = new Dictionary<string, List<long>>(StringComparer.Ordinal);
            foreach (var item in value.EnumerateArray())
            {
                tags.TryAdd(Key(item), [version]);
            }
            value = Elements(tags);
        }
        if (Validate(schema, value, name) is { } error)
        {
            throw new ProblemException(400, "field-invalid", $"Field '{name}': {error}.");
        }
        if (value.GetRawText().Length > MaxValueBytes)
        {
            throw new ProblemException(413, "field-too-large", $"Field '{name}' exceeds {MaxValueBytes} bytes.");
        }
        return new SharedField { Value = value.Clone(), Conflict = conflict, Schema = schema, AppendOnly = appendOnly, Version = version, Tags = tags };
    }

    /// <summary>A field set back to an earlier value (rollback) at <paramref name="newVersion"/>.</summary>
    public static SharedField Restore(SharedField field, JsonElement value, long newVersion)
    {
        Dictionary<string, List<long>>? tags = null;
        if (field.Conflict == "set-union")
        {
            tags = new Dictionary<string, List<long>>(StringComparer.Ordinal);
            foreach (var item in value.ValueKind == JsonValueKind.Array ? value.EnumerateArray() : [])
            {
                tags.TryAdd(Key(item), [newVersion]);
            }
        }
        return new SharedField { Value = value.Clone(), Conflict = field.Conflict, Schema = field.Schema, AppendOnly = field.AppendOnly, Version = newVersion, Tags = tags };
    }

    /// <summary>The first way <paramref name="value"/> breaks <paramref name="schema"/>, or null.</summary>
    public static string? Validate(FieldSchema? schema, JsonElement value, string path)
    {
        if (schema is null)
        {
            return null;
        }
        if (schema.Type is { } type && !HasType(value, type))
        {
            return $"{path} must be of type {type}";
        }
        if (schema.Enum is { Count: > 0 } allowed && !allowed.Any(a => JsonElement.DeepEquals(a, value)))
        {
            return $"{path} must be one of {string.Join(", ", allowed.Select(a => a.GetRawText()))}";
        }
        if (schema.MaxLength is { } maxLength && value.ValueKind == JsonValueKind.String && value.GetString()!.Length > maxLength)
        {
            return $"{path} is longer than {maxLength} characters";
        }
        if (value.ValueKind == JsonValueKind.Number)
        {
            var number = value.GetDouble();
            if (schema.Minimum is { } min && number < min)
            {
                return $"{path} is below {min}";
            }
            if (schema.Maximum is { } max && number > max)
            {
                return $"{path} is above {max}";
            }
        }
        if (value.ValueKind == JsonValueKind.Array)
        {
            if (schema.MaxItems is { } maxItems && value.GetArrayLength() > maxItems)
            {
                return $"{path} has more than {maxItems} items";
            }
            var i = 0;
            foreach (var item in value.EnumerateArray())
            {
                if (Validate(schema.Items, item, $"{path}[{i++}]") is { } error)
                {
                    return error;
                }
            }
        }
        return null;
    }

    private static bool HasType(JsonElement value, string type) => type switch
    {
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        "null" => value.ValueKind == JsonValueKind.Null,
        _ => false,
    };

    /// <summary>True for the schema types <see cref="Validate"/> knows.</summary>
    public static bool IsKnownType(string type) => type is "string" or "number" or "integer" or "boolean" or "object" or "array" or "null";

    private static FieldRefusal Invalid(string name, string detail) => new(400, "field-invalid", $"Field '{name}': {detail}.", name);

    private static string Key(JsonElement item) => JsonSerializer.Serialize(item);

    private static JsonElement Elements(Dictionary<string, List<long>> tags) =>
        JsonSerializer.SerializeToElement(tags.Keys.Select(k => JsonDocument.Parse(k).RootElement).ToList(), ContractsJson.Options);

    private static Dictionary<string, JsonElement> MapOf(JsonElement value) =>
        value.ValueKind == JsonValueKind.Object
            ? value.EnumerateObject().ToDictionary(p => p.Name, p => p.Value, StringComparer.Ordinal)
            : new Dictionary<string, JsonElement>(StringComparer.Ordinal);

    private static int? Compare(JsonElement a, JsonElement b) => (a.ValueKind, b.ValueKind) switch
    {
        (JsonValueKind.Number, JsonValueKind.Number) => a.GetDouble().CompareTo(b.GetDouble()),
        (JsonValueKind.String, JsonValueKind.String) => string.CompareOrdinal(a.GetString(), b.GetString()),
        _ => null,
    };

    private static JsonElement Add(JsonElement current, JsonElement increment)
    {
        if (current.ValueKind != JsonValueKind.Number)
        {
            return increment;
        }
        if (current.TryGetInt64(out var a) && increment.TryGetInt64(out var b))
        {
            try
            {
                return JsonSerializer.SerializeToElement(checked(a + b));
            }
            catch (OverflowException)
            {
                // fall through to a double
            }
        }
        return JsonSerializer.SerializeToElement(current.GetDouble() + increment.GetDouble());
    }
}
