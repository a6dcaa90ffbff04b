using CloudMemory.Contracts.Traces;
using CloudMemory.Trace.Features.Replay;
using static CloudMemory.Trace.Tests.Infrastructure.Steps;

namespace CloudMemory.Trace.Tests.Unit;

public sealed class StepConditionTests
{
    private static readonly TraceStep Step = new()
    {
        TraceId = "t",
        StepId = "s3",
        StepIndex = 3,
        AgentId = "worker",
        StepType = StepTypes.Tool,
        Name = "search_drugs",
        Inputs = Json(new { query = "Penicillin allergy", options = new { limit = 5 } }),
        Outputs = Json(new { status = "error", items = new[] { "a", "b" }, score = 0.25 }),
        StartedAt = T0,
        DurationMs = 1500,
        Success = false,
        Error = new StepError("timeout", "upstream"),
        Usage = new TokenUsage(120, 30),
        Tags = ["prod"],
        InputHash = "h",
        OutputHash = "h",
        Audit = new StepAudit([], [], [], [], [], "compliant", []),
        RecordedAt = T0,
    };

    [Theory]
    [InlineData("durationMs > 1000", true)]
    [InlineData("duration >= 1500 and stepType == 'tool'", true)]
    [InlineData("durationMs < 1000 || name startsWith \"search\"", true)]
    [InlineData("!success", true)]
    [InlineData("not (success or agentId == 'worker')", false)]
    [InlineData("outputs.status == 'error' && outputs.items.length == 2", true)]
    [InlineData("outputs.items[1] == 'b'", true)]
    [InlineData("outputs.items contains 'a'", true)]
    [InlineData("outputs.score <= 0.25 && outputs.score > -1", true)]
    [InlineData("inputs.query contains 'ALLERGY'", true)]
    [InlineData("inputs.options.limit == 5", true)]
    [InlineData("inputs['options'].limit != 5", false)]
    [InlineData("inputs.missing.deeper == null", true)]
    [InlineData("inputs.missing", false)]
    [InlineData("error.type == 'timeout'", true)]
    [InlineData("tokens.inputTokens > 100 && cost == 0", true)]
    [InlineData("tags contains 'prod'", true)]
    [InlineData("stepIndex == 3 && name endsWith '_drugs'", true)]
    [InlineData("outputs.status > 5", false)]
    public void Matches_Expression_EvaluatedOverTheStep(string condition, bool expected) =>
        StepCondition.Parse(condition).Matches(Step).Should().Be(expected);

    [Theory]
    [InlineData("", 0)]
    [InlineData("durationMs >", 12)]
    [InlineData("System.IO.File.Delete('x')", 0)]
    [InlineData("name == 'unterminated", 8)]
    [InlineData("durationMs > 1 ; drop", 15)]
    [InlineData("(durationMs > 1", 15)]
    [InlineData("outputs.", 8)]
    public void Parse_Invalid_ReportsWhere(string condition, int position)
    {
        var act = () => StepCondition.Parse(condition);

        act.Should().Throw<ConditionException>().Which.Position.Should().Be(position);
    }

    [Fact]
    public void Parse_DeepNestingOrHugeInput_Rejected()
    {
        ((Action)(() => StepCondition.Parse(new string('(', 40) + "success" + new string(')', 40)))).Should().Throw<ConditionException>();
        ((Action)(() => StepCondition.Parse(new string('!', 40) + "success"))).Should().Throw<ConditionException>();
        ((Action)(() => StepCondition.Parse(string.Join(" && ", Enumerable.Repeat("success", 200))))).Should().Throw<ConditionException>();
    }
}
