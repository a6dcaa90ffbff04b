using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CloudMemory.Contracts.Traces;

namespace CloudMemory.Trace.Features.Audit;

/// <summary>
/// Finds personal (email, phone, ID numbers) and medical (conditions, drugs, allergies; English and
/// Chinese) data in a step's inputs, outputs and error message, redacts the configured kinds and
/// decides the compliance status. Runs at ingest, before anything is stored.
/// </summary>
public sealed partial class SensitivityClassifier(AuditOptions options)
{
    /// <summary>Bit of each kind in the indexed <c>sensitivity</c> column.</summary>
    public static readonly IReadOnlyDictionary<string, int> KindBits = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["email"] = 1, ["phone"] = 2, ["id_number"] = 4, ["condition"] = 16, ["drug"] = 32, ["allergy"] = 64,
    };

    private static readonly HashSet<string> PiiKinds = ["email", "phone", "id_number"];

    // The audit of a step with nothing sensitive (shared: audits are never changed after ingest).
    private static readonly StepAudit Clean = new([], [], [], [], [], "compliant", []);

    private readonly IReadOnlySet<string> _redact = options.RedactKinds;
    private readonly IReadOnlySet<string> _alert = options.AlertKinds;

    /// <summary>What classification produced: the values to store and the audit.</summary>
    public sealed record Result(JsonElement? Inputs, JsonElement? Outputs, StepError? Error, StepAudit Audit, int Flags);

    /// <summary>Classifies and redacts one step's payload.</summary>
    public Result Classify(JsonElement? inputs, JsonElement? outputs, StepError? error)
    {
        var findings = new List<AuditFinding>();
        var redacted = new HashSet<string>(StringComparer.Ordinal);
        var newInputs = Scan(inputs, "inputs", findings, redacted);
        var newOutputs = Scan(outputs, "outputs", findings, redacted);
        var newError = error;
        if (error?.Message is { } message)
        {
            var text = ScanText(message, "error.message", findings, redacted);
            newError = text == message ? error : error with { Message = text };
        }
        if (findings.Count == 0)
        {
            return new Result(inputs, outputs, error, Clean, 0); // the common case: nothing found, nothing rewritten
        }
        var kinds = findings.Select(f => f.Kind).Distinct().Order(StringComparer.Ordinal).ToList();
        var sensitivity = new List<string>();
        if (kinds.Any(PiiKinds.Contains))
        {
            sensitivity.Add("pii");
        }
        if (kinds.Any(k => !PiiKinds.Contains(k)))
        {
            sensitivity.Add("medical");
        }
        var tags = new List<string>();
        if (sensitivity.Contains("pii"))
        {
            tags.Add("gdpr:personal-data");
            tags.Add("pipl:personal-information");
        }
        if (kinds.Contains("id_number") || sensitivity.Contains("medical"))
        {
            tags.Add("pipl:sensitive-personal-information");
        }
        if (sensitivity.Contains("medical"))
        {
            tags.Add("hipaa:phi");
        }
        var violations = kinds.Where(k => !redacted.Contains(k) && _alert.Contains(k)).Select(k => $"unredacted-{k}").ToList();
        var status = kinds.Count == 0 ? "compliant" : violations.Count > 0 ? "violation" : redacted.Count > 0 ? "redacted" : "compliant";
        var flags = kinds.Aggregate(0, (f, k) => f | KindBits[k]);
        var audit = new StepAudit(sensitivity, kinds, findings, [.. redacted.Order(StringComparer.Ordinal)], tags, status, violations);
        return new Result(newInputs, newOutputs, newError, audit, flags);
    }

    private JsonElement? Scan(JsonElement? value, string root, List<AuditFinding> findings, HashSet<string> redacted)
    {
        // Most payloads hold nothing sensitive: a read-only pass over their strings decides whether
        // the (allocating) rewrite is needed at all.
        if (value is not { } element || !AnySensitive(element))
        {
            return value;
        }
        var node = JsonSerializer.SerializeToNode(element);
        var changed = false;
        node = Walk(node, root, findings, redacted, ref changed);
        return changed ? JsonSerializer.SerializeToElement(node) : value;
    }

    private JsonNode? Walk(JsonNode? node, string path, List<AuditFinding> findings, HashSet<string> redacted, ref bool changed)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var key in obj.Select(p => p.Key).ToList())
                {
                    var child = obj[key];
                    var replaced = Walk(child, $"{path}.{key}", findings, redacted, ref changed);
                    if (!ReferenceEquals(replaced, child))
                    {
                        obj[key] = replaced;
                    }
                }
                return obj;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    var child = array[i];
                    var replaced = Walk(child, $"{path}[{i}]", findings, redacted, ref changed);
                    if (!ReferenceEquals(replaced, child))
                    {
                        array[i] = replaced;
                    }
                }
                return array;
            case JsonValue leaf when leaf.GetValueKind() == JsonValueKind.String:
                var text = leaf.GetValue<string>();
                var result = ScanText(text, path, findings, redacted);
                if (result == text)
                {
                    return leaf;
                }
                changed = true;
                return JsonValue.Create(result);
            default:
                return node;
        }
    }

    private string ScanText(string text, string path, List<AuditFinding> findings, HashSet<string> redacted)
    {
        if (text.Length < 3)
        {
            return text;
        }
        if (MayHoldEmail(text))
        {
            text = Apply(text, "email", EmailPattern(), path, findings, redacted, null);
        }
        if (HasDigit(text))
        {
            text = Apply(text, "id_number", IdNumberPattern(), path, findings, redacted, IsIdNumber);
            text = Apply(text, "phone", PhonePattern(), path, findings, redacted, null);
        }
        if (MayHoldMedical(text))
        {
            text = Apply(text, "allergy", AllergyPattern(), path, findings, redacted, null);
            text = Apply(text, "condition", ConditionPattern(), path, findings, redacted, null);
            text = Apply(text, "drug", DrugPattern(), path, findings, redacted, null);
        }
        return text;
    }

    private string Apply(string text, string kind, Regex pattern, string path, List<AuditFinding> findings, HashSet<string> redacted, Func<string, bool>? validate)
    {
        var count = 0;
        var redact = _redact.Contains(kind);
        var result = pattern.Replace(text, m =>
        {
            if (validate is not null && !validate(m.Value))
            {
                return m.Value;
            }
            count++;
            return redact ? $"[REDACTED:{kind}]" : m.Value;
        });
        if (count == 0)
        {
            return text;
        }
        findings.Add(new AuditFinding(kind, path, count));
        if (redact)
        {
            redacted.Add(kind);
        }
        return result;
    }

    private static bool AnySensitive(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => element.GetString() is { Length: >= 3 } text && IsSensitive(text),
        JsonValueKind.Object => element.EnumerateObject().Any(p => AnySensitive(p.Value)),
        JsonValueKind.Array => element.EnumerateArray().Any(AnySensitive),
        _ => false,
    };

    // The vectorised character searches rule out the email, ID and phone patterns for most text
    // before any regex runs (every email holds '@'; every ID and phone number a digit).
    private static bool IsSensitive(string text) =>
        (MayHoldEmail(text) && EmailPattern().IsMatch(text))
        || (HasDigit(text) && (IdNumberPattern().IsMatch(text) || PhonePattern().IsMatch(text)))
        || (MayHoldMedical(text) && (AllergyPattern().IsMatch(text) || ConditionPattern().IsMatch(text) || DrugPattern().IsMatch(text)));

    // Every match of the three medical patterns contains one of these stems. In ASCII text, where
    // ordinal and regex case-insensitivity agree, one vectorised multi-string search rules out all
    // three regexes for most text (they were the largest share of ingest time); other text (Chinese,
    // or letters that case-fold to ASCII such as the Kelvin sign) always goes to the regexes.
    // Keep in step with AllergyPattern, ConditionPattern and DrugPattern.
    private static readonly SearchValues<string> MedicalStems = SearchValues.Create(
    [
        "allerg", "anaphyla",
        "diabetes", "hypertension", "asthma", "cancer", "tumo", "depression", "anxiety disorder", "hiv", "hepatitis", "epilepsy", "stroke",
        "heart disease", "heart failure", "arthritis", "alzheimer", "dementia", "schizophrenia", "bipolar disorder", "copd", "pneumonia",
        "tuberculosis", "migraine", "kidney disease", "leukemia", "parkinson",
        "metformin", "insulin", "aspirin", "ibuprofen", "acetaminophen", "paracetamol", "amoxicillin", "penicillin", "warfarin", "lisinopril",
        "atorvastatin", "simvastatin", "omeprazole", "prednisone", "morphine", "oxycodone", "sertraline", "fluoxetine", "levothyroxine",
        "amlodipine", "losartan", "gabapentin", "azithromycin", "cephalosporin", "codeine",
    ], StringComparison.OrdinalIgnoreCase);

    private static bool MayHoldMedical(string text) => !Ascii.IsValid(text) || text.AsSpan().IndexOfAny(MedicalStems) >= 0;

    private static bool MayHoldEmail(string text) => text.Contains('@', StringComparison.Ordinal);

    // \d is any Unicode decimal digit (e.g. full-width ones in Chinese text), not only ASCII.
    private static bool HasDigit(string text)
    {
        var span = text.AsSpan();
        if (span.IndexOfAnyInRange('0', '9') >= 0)
        {
            return true;
        }
        if (span.IndexOfAnyExceptInRange('\0', '\x7f') < 0)
        {
            return false;
        }
        foreach (var c in span)
        {
            if (char.IsDigit(c))
            {
                return true;
            }
        }
        return false;
    }

    // A US SSN, or a Chinese resident ID whose ISO 7064 check character is right (18 characters).
    private static bool IsIdNumber(string value)
    {
        if (value.Length == 11)
        {
            return true;
        }
        if (value.Length != 18)
        {
            return false;
        }
        int[] weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        var sum = 0;
        for (var i = 0; i < 17; i++)
        {
            sum += (value[i] - '0') * weights[i];
        }
        var check = "10X98765432"[sum % 11];
        return char.ToUpperInvariant(value[17]) == check;
    }

    [GeneratedRegex(@"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")]
    private static partial Regex EmailPattern();

    [GeneratedRegex(@"(?<![\dA-Za-z])(?:\d{17}[\dXx]|\d{3}-\d{2}-\d{4})(?![\dA-Za-z])")]
    private static partial Regex IdNumberPattern();

    // Chinese mobile numbers (optionally +86), and numbers written with separators or a leading +
    // (never a bare digit run, which is more often a timestamp or an id).
    [GeneratedRegex(@"(?<![0-9A-Za-z_+])(?:(?:\+?86[- ]?)?1[3-9]\d{9}|\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4})(?!\d)")]
    private static partial Regex PhonePattern();

    [GeneratedRegex(@"(?:\b(?:allerg(?:y|ies|ic)|anaphyla(?:xis|ctic))\b|过敏)", RegexOptions.IgnoreCase)]
    private static partial Regex AllergyPattern();

    [GeneratedRegex(@"(?:\b(?:diabetes|hypertension|asthma|cancer|tumou?r|depression|anxiety disorder|hiv|hepatitis [abc]?|hepatitis|epilepsy|stroke|heart disease|heart failure|arthritis|alzheimer'?s|dementia|schizophrenia|bipolar disorder|copd|pneumonia|tuberculosis|migraine|kidney disease|leukemia|parkinson'?s)\b|糖尿病|高血压|哮喘|癌症|肿瘤|抑郁症|焦虑症|艾滋病|肝炎|癫痫|中风|脑卒中|心脏病|冠心病|心力衰竭|关节炎|阿尔茨海默|痴呆|精神分裂|肺炎|结核|偏头痛|肾病|白血病|帕金森)", RegexOptions.IgnoreCase)]
    private static partial Regex ConditionPattern();

    [GeneratedRegex(@"(?:\b(?:metformin|insulin|aspirin|ibuprofen|acetaminophen|paracetamol|amoxicillin|penicillin|warfarin|lisinopril|atorvastatin|simvastatin|omeprazole|prednisone|morphine|oxycodone|sertraline|fluoxetine|levothyroxine|amlodipine|losartan|gabapentin|azithromycin|cephalosporins?|codeine|insulin glargine)\b|二甲双胍|胰岛素|阿司匹林|布洛芬|对乙酰氨基酚|扑热息痛|阿莫西林|青霉素|头孢|华法林|他汀|奥美拉唑|泼尼松|吗啡|可待因|氨氯地平)", RegexOptions.IgnoreCase)]
    private static partial Regex DrugPattern();
}
