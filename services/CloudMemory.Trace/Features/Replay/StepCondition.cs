using System.Globalization;
using System.Text.Json;
using CloudMemory.Contracts;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Features.Replay;

/// <summary>A condition that is not valid; <see cref="Position"/> is the character where parsing stopped.</summary>
public sealed class ConditionException(int position, string message) : Exception($"at {position}: {message}")
{
    /// <summary>0-based character position.</summary>
    public int Position { get; } = position;
}

/// <summary>
/// A breakpoint condition: a small expression language over one step, parsed here and evaluated by
/// walking its tree — no code is compiled or run, no regular expression is built from it, and its
/// size and nesting are bounded.
/// <code>
/// expr    := or
/// or      := and (("||" | "or") and)*
/// and     := unary (("&amp;&amp;" | "and") unary)*
/// unary   := ("!" | "not") unary | compare
/// compare := operand (("==" | "!=" | "&lt;" | "&lt;=" | "&gt;" | "&gt;=" | "contains" | "startsWith" | "endsWith") operand)?
/// operand := number | 'text' | "text" | true | false | null | path | "(" expr ")"
/// path    := root ("." name | "[" index "]")*        (".length" of an array or text is its size)
/// root    := inputs | outputs | metadata | error | durationMs | duration | success | stepType | name | agentId
///          | contextId | stepId | stepIndex | tokens | cost | tags
/// </code>
/// Examples: <c>durationMs &gt; 2000 &amp;&amp; stepType == 'tool'</c>, <c>outputs.status == "error"</c>,
/// <c>inputs.query contains 'allergy'</c>, <c>!success</c>, <c>outputs.items.length &gt;= 3</c>.
/// </summary>
public sealed class StepCondition
{
    /// <summary>Longest accepted condition.</summary>
    public const int MaxLength = 1000;

    private const int MaxDepth = 32;

    private static readonly HashSet<string> Roots = new(StringComparer.Ordinal)
    {
        "inputs", "outputs", "metadata", "error", "durationMs", "duration", "success", "stepType", "name", "agentId",
        "contextId", "stepId", "stepIndex", "tokens", "cost", "tags",
    };

    private readonly Node _root;

    private StepCondition(Node root, string text)
    {
        _root = root;
        Text = text;
    }

    /// <summary>The source text.</summary>
    public string Text { get; }

    /// <summary>Parses <paramref name="text"/>; throws <see cref="ConditionException"/>.</summary>
    public static StepCondition Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new ConditionException(0, "the condition is empty");
        }
        if (text.Length > MaxLength)
        {
            throw new ConditionException(MaxLength, $"the condition is longer than {MaxLength} characters");
        }
        var parser = new Parser(Tokenize(text));
        var node = parser.Expression(0);
        parser.ExpectEnd();
        return new StepCondition(node, text);
    }

    /// <summary>Whether the condition holds for <paramref name="step"/>.</summary>
    public bool Matches(TraceStep step) => Truthy(_root.Evaluate(step));

    private static bool Truthy(object? value) => value switch
    {
        null => false,
        bool b => b,
        double d => d != 0,
        string s => s.Length > 0,
        _ => true,
    };

    // ---- tokens ----

    private enum Kind { Number, String, Name, Symbol, End }

    private readonly record struct Token(Kind Kind, string Text, int Position);

    private static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (char.IsAsciiDigit(c) || (c == '-' && i + 1 < text.Length && char.IsAsciiDigit(text[i + 1]) && PreviousAllowsSign(tokens)))
            {
                var start = i++;
                while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
                {
                    i++;
                }
                tokens.Add(new Token(Kind.Number, text[start..i], start));
            }
            else if (c is '\'' or '"')
            {
                var start = i++;
                var value = new System.Text.StringBuilder();
                while (i < text.Length && text[i] != c)
                {
                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }
                    value.Append(text[i++]);
                }
                if (i >= text.Length)
                {
                    throw new ConditionException(start, "unterminated text literal");
                }
                i++;
                tokens.Add(new Token(Kind.String, value.ToString(), start));
            }
            else if (char.IsAsciiLetter(c) || c == '_')
            {
                var start = i;
                while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_'))
                {
                    i++;
                }
                tokens.Add(new Token(Kind.Name, text[start..i], start));
            }
            else
            {
                var two = i + 1 < text.Length ? text.Substring(i, 2) : "";
                if (two is "==" or "!=" or "<=" or ">=" or "&&" or "||")
                {
                    tokens.Add(new Token(Kind.Symbol, two, i));
                    i += 2;
                }
                else if (c is '<' or '>' or '!' or '(' or ')' or '.' or '[' or ']')
                {
                    tokens.Add(new Token(Kind.Symbol, c.ToString(), i));
                    i++;
                }
                else
                {
                    throw new ConditionException(i, $"unexpected character '{c}'");
                }
            }
            if (tokens.Count > 200)
            {
                throw new ConditionException(i, "the condition has too many parts");
            }
        }
        tokens.Add(new Token(Kind.End, "", text.Length));
        return tokens;
    }

    private static bool PreviousAllowsSign(List<Token> tokens) =>
        tokens.Count == 0 || tokens[^1].Kind == Kind.Symbol && tokens[^1].Text is not (")" or "]") || tokens[^1].Kind == Kind.Name && IsOperatorWord(tokens[^1].Text);

    private static bool IsOperatorWord(string word) => word is "and" or "or" or "not" or "contains" or "startsWith" or "endsWith";

    // ---- parser ----

    private sealed class Parser(List<Token> tokens)
    {
        private int _next;

        private Token Peek => tokens[_next];

        public Node Expression(int depth)
        {
            if (depth > MaxDepth)
            {
                throw new ConditionException(Peek.Position, "the condition is nested too deeply");
            }
            var left = And(depth);
            while (Accept("||") || AcceptWord("or"))
            {
                left = new OrNode(left, And(depth));
            }
            return left;
        }

        public void ExpectEnd()
        {
            if (Peek.Kind != Kind.End)
            {
                throw new ConditionException(Peek.Position, $"unexpected '{Peek.Text}'");
            }
        }

        private Node And(int depth)
        {
            var left = Unary(depth);
            while (Accept("&&") || AcceptWord("and"))
            {
                left = new AndNode(left, Unary(depth));
            }
            return left;
        }

        private Node Unary(int depth)
        {
            if (Accept("!") || AcceptWord("not"))
            {
                return depth >= MaxDepth ? throw new ConditionException(Peek.Position, "the condition is nested too deeply") : new NotNode(Unary(depth + 1));
            }
            var left = Operand(depth);
            var op = Peek;
            if (op.Kind == Kind.Symbol && op.Text is "==" or "!=" or "<" or "<=" or ">" or ">="
                || op.Kind == Kind.Name && op.Text is "contains" or "startsWith" or "endsWith")
            {
                _next++;
                return new CompareNode(op.Text, left, Operand(depth), op.Position);
            }
            return left;
        }

        private Node Operand(int depth)
        {
            var token = Peek;
            switch (token.Kind)
            {
                case Kind.Number:
                    _next++;
                    return double.TryParse(token.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                        ? new LiteralNode(number)
                        : throw new ConditionException(token.Position, $"'{token.Text}' is not a number");
                case Kind.String:
                    _next++;
                    return new LiteralNode(token.Text);
                case Kind.Name when token.Text is "true" or "false":
                    _next++;
                    return new LiteralNode(token.Text == "true");
                case Kind.Name when token.Text == "null":
                    _next++;
                    return new LiteralNode(null);
                case Kind.Name when Roots.Contains(token.Text):
                    _next++;
                    return Path(token);
                case Kind.Name:
                    throw new ConditionException(token.Position, $"unknown name '{token.Text}' (use one of {string.Join(", ", Roots)})");
                case Kind.Symbol when token.Text == "(":
                    _next++;
                    var inner = Expression(depth + 1);
                    Expect(")");
                    return inner;
                default:
                    throw new ConditionException(token.Position, token.Kind == Kind.End ? "the condition ends too early" : $"unexpected '{token.Text}'");
            }
        }

        private PathNode Path(Token root)
        {
            var segments = new List<object>();
            while (true)
            {
                if (Accept("."))
                {
                    var name = Peek;
                    if (name.Kind != Kind.Name)
                    {
                        throw new ConditionException(name.Position, "expected a property name after '.'");
                    }
                    _next++;
                    segments.Add(name.Text);
                }
                else if (Accept("["))
                {
                    var index = Peek;
                    if (index.Kind == Kind.Number && int.TryParse(index.Text, NumberStyles.None, CultureInfo.InvariantCulture, out var i))
                    {
                        segments.Add(i);
                    }
                    else if (index.Kind == Kind.String)
                    {
                        segments.Add(index.Text);
                    }
                    else
                    {
                        throw new ConditionException(index.Position, "expected an index or a quoted property name inside [ ]");
                    }
                    _next++;
                    Expect("]");
                }
                else
                {
                    return new PathNode(root.Text, segments);
                }
            }
        }

        private bool Accept(string symbol)
        {
            if (Peek.Kind == Kind.Symbol && Peek.Text == symbol)
            {
                _next++;
                return true;
            }
            return false;
        }

        private bool AcceptWord(string word)
        {
            if (Peek.Kind == Kind.Name && Peek.Text == word)
            {
                _next++;
                return true;
            }
            return false;
        }

        private void Expect(string symbol)
        {
            if (!Accept(symbol))
            {
                throw new ConditionException(Peek.Position, $"expected '{symbol}'");
            }
        }
    }

    // ---- evaluation ----

    private abstract class Node
    {
        public abstract object? Evaluate(TraceStep step);
    }

    private sealed class LiteralNode(object? value) : Node
    {
        public override object? Evaluate(TraceStep step) => value;
    }

    private sealed class NotNode(Node inner) : Node
    {
        public override object? Evaluate(TraceStep step) => !Truthy(inner.Evaluate(step));
    }

    private sealed class AndNode(Node left, Node right) : Node
    {
        public override object? Evaluate(TraceStep step) => Truthy(left.Evaluate(step)) && Truthy(right.Evaluate(step));
    }

    private sealed class OrNode(Node left, Node right) : Node
    {
        public override object? Evaluate(TraceStep step) => Truthy(left.Evaluate(step)) || Truthy(right.Evaluate(step));
    }

    private sealed class CompareNode(string op, Node left, Node right, int position) : Node
    {
        public int Position { get; } = position;

        public override object? Evaluate(TraceStep step)
        {
            var l = left.Evaluate(step);
            var r = right.Evaluate(step);
            return op switch
            {
                "==" => ValuesEqual(l, r),
                "!=" => !ValuesEqual(l, r),
                "<" => Order(l, r) is < 0,
                "<=" => Order(l, r) is <= 0,
                ">" => Order(l, r) is > 0,
                ">=" => Order(l, r) is >= 0,
                "contains" => Contains(l, r),
                "startsWith" => l is string ls && r is string rs && ls.StartsWith(rs, StringComparison.OrdinalIgnoreCase),
                "endsWith" => l is string le && r is string re && le.EndsWith(re, StringComparison.OrdinalIgnoreCase),
                _ => false,
            };
        }

        private static bool ValuesEqual(object? l, object? r) => (l, r) switch
        {
            (null, null) => true,
            (double a, double b) => a == b,
            (string a, string b) => string.Equals(a, b, StringComparison.Ordinal),
            (bool a, bool b) => a == b,
            (JsonElement a, JsonElement b) => JsonElement.DeepEquals(a, b),
            _ => false,
        };

        private static int? Order(object? l, object? r) => (l, r) switch
        {
            (double a, double b) => a.CompareTo(b),
            (string a, string b) => string.CompareOrdinal(a, b),
            _ => null,
        };

        private static bool Contains(object? l, object? r) => l switch
        {
            string s when r is string t => s.Contains(t, StringComparison.OrdinalIgnoreCase),
            JsonElement { ValueKind: JsonValueKind.Array } array => array.EnumerateArray().Any(item => ValuesEqual(Leaf(item), r)),
            JsonElement { ValueKind: JsonValueKind.Object } obj when r is string key => obj.TryGetProperty(key, out _),
            _ => false,
        };
    }

    private sealed class PathNode(string root, List<object> segments) : Node
    {
        public override object? Evaluate(TraceStep step)
        {
            object? value = root switch
            {
                "inputs" => step.Inputs,
                "outputs" => step.Outputs,
                "metadata" => step.Metadata,
                "error" => step.Error is null ? null : JsonSerializer.SerializeToElement(step.Error, ContractsJson.Options),
                "durationMs" or "duration" => step.DurationMs,
                "success" => step.Success,
                "stepType" => step.StepType,
                "name" => step.Name,
                "agentId" => step.AgentId,
                "contextId" => step.ContextId,
                "stepId" => step.StepId,
                "stepIndex" => (double)step.StepIndex,
                "tokens" => JsonSerializer.SerializeToElement(step.Usage ?? new TokenUsage(), ContractsJson.Options),
                "cost" => step.Cost,
                "tags" => JsonSerializer.SerializeToElement(step.Tags, ContractsJson.Options),
                _ => null,
            };
            if (value is JsonElement element)
            {
                value = Leaf(element);
            }
            foreach (var segment in segments)
            {
                value = (value, segment) switch
                {
                    (JsonElement { ValueKind: JsonValueKind.Object } obj, string name) => obj.TryGetProperty(name, out var child) ? Leaf(child) : null,
                    (JsonElement { ValueKind: JsonValueKind.Array } array, "length") => (double)array.GetArrayLength(),
                    (JsonElement { ValueKind: JsonValueKind.Array } array, int index) => index < array.GetArrayLength() ? Leaf(array[index]) : null,
                    (string text, "length") => (double)text.Length,
                    _ => null,
                };
            }
            return value;
        }
    }

    private static object? Leaf(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Number => element.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        _ => element,
    };
}
