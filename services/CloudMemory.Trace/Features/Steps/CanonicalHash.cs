using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace CloudMemory.Trace.Features.Steps;

/// <summary>
/// A hash of a JSON value that ignores formatting and property order, so two runs that sent the
/// same inputs compare equal however their writers serialised them. The canonical form is written
/// into one reusable per-thread buffer and hashed once (one call into the crypto library per value,
/// not one per token — hashing was a large share of ingest time).
/// </summary>
public static class CanonicalHash
{
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? _buffer;

    /// <summary>Hex SHA-256 (first 16 bytes) of the canonical form; <c>null</c> and absent hash alike.</summary>
    public static string Of(JsonElement? value)
    {
        var buffer = _buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        if (value is { } element)
        {
            Append(buffer, element);
        }
        else
        {
            Write(buffer, "n"u8);
        }
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(buffer.WrittenSpan, digest);
        if (buffer.Capacity > 1 << 20)
        {
            _buffer = null; // do not keep a huge payload's buffer alive on the thread
        }
        return Convert.ToHexStringLower(digest[..16]);
    }

    private static void Append(ArrayBufferWriter<byte> buffer, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                Write(buffer, "{"u8);
                var properties = new List<(string Name, int Position, JsonElement Value)>();
                foreach (var property in element.EnumerateObject())
                {
                    properties.Add((property.Name, properties.Count, property.Value));
                }
                // Ordinal by name; equal names keep their order (a stable sort).
                properties.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name) is var c && c != 0 ? c : a.Position.CompareTo(b.Position));
                foreach (var (name, _, value) in properties)
                {
                    AppendString(buffer, name);
                    Write(buffer, ":"u8);
                    Append(buffer, value);
                }
                Write(buffer, "}"u8);
                break;
            case JsonValueKind.Array:
                Write(buffer, "["u8);
                foreach (var item in element.EnumerateArray())
                {
                    Append(buffer, item);
                    Write(buffer, ","u8);
                }
                Write(buffer, "]"u8);
                break;
            case JsonValueKind.String:
                AppendString(buffer, element.GetString()!);
                break;
            case JsonValueKind.Number:
                // 1, 1.0 and 1e0 are the same number.
                Write(buffer, "#"u8);
                var span = buffer.GetSpan(32);
                if (!element.GetDouble().TryFormat(span, out var written, "R", CultureInfo.InvariantCulture))
                {
                    throw new InvalidOperationException("A number did not fit its canonical buffer.");
                }
                buffer.Advance(written);
                break;
            case JsonValueKind.True:
                Write(buffer, "t"u8);
                break;
            case JsonValueKind.False:
                Write(buffer, "f"u8);
                break;
            default:
                Write(buffer, "n"u8);
                break;
        }
    }

    private static void AppendString(ArrayBufferWriter<byte> buffer, string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        var span = buffer.GetSpan(5 + length);
        span[0] = (byte)'s';
        BinaryPrimitives.WriteInt32LittleEndian(span[1..], length);
        Encoding.UTF8.GetBytes(value, span[5..]);
        buffer.Advance(5 + length);
    }

    private static void Write(ArrayBufferWriter<byte> buffer, ReadOnlySpan<byte> bytes) => buffer.Write(bytes);
}
