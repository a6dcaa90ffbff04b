using CloudMemory.Trace.Features.Audit;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Unit;

/// <summary>
/// The medical terms the classifier knows, found in any letter case and in any text around them:
/// guards the fast pre-check that rules out the medical patterns for most text (a term it missed
/// would silently never be classified).
/// </summary>
public sealed class SensitivityClassifierTests
{
    private static readonly SensitivityClassifier Classifier = new(new CloudMemory.Trace.AuditOptions());

    public static TheoryData<string, string> Terms() => new()
    {
        { "allergy", "allergy" }, { "allergy", "allergies" }, { "allergy", "allergic" }, { "allergy", "anaphylaxis" }, { "allergy", "anaphylactic" }, { "allergy", "过敏" },
        { "condition", "diabetes" }, { "condition", "hypertension" }, { "condition", "asthma" }, { "condition", "cancer" }, { "condition", "tumor" },
        { "condition", "tumour" }, { "condition", "depression" }, { "condition", "anxiety disorder" }, { "condition", "HIV" }, { "condition", "hepatitis b" },
        { "condition", "epilepsy" }, { "condition", "stroke" }, { "condition", "heart disease" }, { "condition", "heart failure" }, { "condition", "arthritis" },
        { "condition", "alzheimer's" }, { "condition", "alzheimers" }, { "condition", "dementia" }, { "condition", "schizophrenia" },
        { "condition", "bipolar disorder" }, { "condition", "COPD" }, { "condition", "pneumonia" }, { "condition", "tuberculosis" }, { "condition", "migraine" },
        { "condition", "kidney disease" }, { "condition", "leukemia" }, { "condition", "parkinson's" }, { "condition", "糖尿病" }, { "condition", "帕金森" },
        { "drug", "metformin" }, { "drug", "insulin" }, { "drug", "aspirin" }, { "drug", "ibuprofen" }, { "drug", "acetaminophen" }, { "drug", "paracetamol" },
        { "drug", "amoxicillin" }, { "drug", "penicillin" }, { "drug", "warfarin" }, { "drug", "lisinopril" }, { "drug", "atorvastatin" },
        { "drug", "simvastatin" }, { "drug", "omeprazole" }, { "drug", "prednisone" }, { "drug", "morphine" }, { "drug", "oxycodone" }, { "drug", "sertraline" },
        { "drug", "fluoxetine" }, { "drug", "levothyroxine" }, { "drug", "amlodipine" }, { "drug", "losartan" }, { "drug", "gabapentin" },
        { "drug", "azithromycin" }, { "drug", "cephalosporins" }, { "drug", "codeine" }, { "drug", "insulin glargine" }, { "drug", "青霉素" },
    };

    [Theory]
    [MemberData(nameof(Terms))]
    public void MedicalTerm_InAnyCase_IsClassified(string kind, string term)
    {
        foreach (var text in new[] { $"the patient mentioned {term} yesterday", $"{term.ToUpperInvariant()}!", $"Notes: {Capitalize(term)}, see chart" })
        {
            var result = Classifier.Classify(Json(new { note = text }), null, null);
            result.Audit.Kinds.Should().Contain(kind, $"'{text}' names {term}");
            result.Audit.Sensitivity.Should().Contain("medical");
        }
    }

    [Fact]
    public void TextWithoutMedicalTerms_OrWithTermsOnlyInsideOtherWords_IsCompliant()
    {
        foreach (var text in new[] { "which antibiotic for a sinus infection?", "see the formulary entry", "a strokes-gained statistic", "chive soup", "tumbler" })
        {
            var result = Classifier.Classify(Json(new { note = text }), Json(new { text }), null);
            result.Audit.Kinds.Should().BeEmpty(text);
            result.Audit.Status.Should().Be("compliant");
        }
    }

    [Fact]
    public void NonAsciiLetterThatCaseFoldsToAscii_StillGoesThroughTheFullPatterns()
    {
        // U+212A KELVIN SIGN folds to 'k' under the patterns' case-insensitivity: "\u212Aidney disease".
        var result = Classifier.Classify(Json(new { note = "history of \u212Aidney disease" }), null, null);
        result.Audit.Kinds.Should().Contain("condition");
    }

    private static string Capitalize(string term) => term.Length == 0 ? term : char.ToUpperInvariant(term[0]) + term[1..];
}
