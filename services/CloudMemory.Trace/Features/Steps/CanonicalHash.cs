using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>
/// A hash of a JSON value that ignores formatting and property order, so two runs that sent the
/// same inputs compare equal however their writers serialised them.
/// </summary>
public static class CanonicalHash
{
    /// <summary>Hex SHA-256 (first 16 bytes) of the canonical form; <c>null</c> and absent hash alike.</summary>
    public static string Of(JsonElement? value)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        if (value is { } element)
        {
            Append(hash, element);
        }
        else
        {
            hash.AppendData("n"u8);
        }
        Span<byte> digest = stackalloc byte[32];
        hash.GetHashAndReset(digest);
        return Convert.ToHexStringLower(digest[..16]);
    }

    private static void Append(IncrementalHash hash, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                hash.AppendData("{"u8);
                foreach (var property in element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    AppendString(hash, property.Name);
                    hash.AppendData(":"u8);
                    Append(hash, property.Value);
                }
                hash.AppendData("}"u8);
                break;
            case JsonValueKind.Array:
                hash.AppendData("["u8);
                foreach (var item in element.EnumerateArray())
                {
                    Append(hash, item);
                    hash.AppendData(","u8);
                }
                hash.AppendData("]"u8);
                break;
            case JsonValueKind.String:
                AppendString(hash, element.GetString()!);
                break;
            case JsonValueKind.Number:
                // 1, 1.0 and 1e0 are the same number.
                hash.AppendData(Encoding.UTF8.GetBytes("#" + element.GetDouble().ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
                break;
            case JsonValueKind.True:
                hash.AppendData("t"u8);
                break;
            case JsonValueKind.False:
                hash.AppendData("f"u8);
                break;
            default:
                hash.AppendData("n"u8);
                break;
        }
    }

    private static void AppendString(IncrementalHash hash, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        Span<byte> length = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(length, bytes.Length);
        hash.AppendData("s"u8);
        hash.AppendData(length);
        hash.AppendData(bytes);
    }
}
