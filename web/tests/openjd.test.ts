import { describe, expect, it } from "vitest";
import {
  type OpenJdInputs,
  emptyOpenJdInputs,
  openJdErrors,
  toOpenJdSubmission,
} from "../src/forms/openjd";

const TEMPLATE = `specificationVersion: jobtemplate-2023-09
name: Echo
parameterDefinitions:
- name: Greeting
  type: STRING
steps:
- name: Say
  script:
    actions:
      onRun:
        command: /bin/echo
        args: ["{{Param.Greeting}}"]
`;

function inputs(fields: Partial<OpenJdInputs>): OpenJdInputs {
  return { ...emptyOpenJdInputs(), template: TEMPLATE, ...fields };
}

describe("OpenJD template submission", () => {
  it("sends the template, the parameters by name and nothing blank", () => {
    expect(toOpenJdSubmission(inputs({}))).toEqual({
      template: TEMPLATE,
      parameters: {},
      metadata: { submitted_from: "dashboard" },
    });
    const body = toOpenJdSubmission(
      inputs({
        parameters: [
          { name: " Greeting ", value: " hello there " },
          { name: "", value: "" },
          { name: "Frames", value: "1-3" },
        ],
        name: "  my echo ",
        priority: 70,
        workerTag: "tag-1",
      }),
    );
    expect(body).toEqual({
      template: TEMPLATE,
      parameters: { Greeting: "hello there", Frames: "1-3" },
      name: "my echo",
      priority: 70,
      worker_tag: "tag-1",
      metadata: { submitted_from: "dashboard" },
    });
  });

  it("keeps a named parameter with a blank value (the manager judges it)", () => {
    expect(toOpenJdSubmission(inputs({ parameters: [{ name: "Note", value: "" }] })).parameters).toEqual({ Note: "" });
  });

  it("takes the priority a number input hands over, and its text", () => {
    expect(toOpenJdSubmission(inputs({ priority: "0" })).priority).toBe(0);
    expect(toOpenJdSubmission(inputs({ priority: "" }))).not.toHaveProperty("priority");
    expect(openJdErrors(inputs({ priority: 100 }))).toEqual({});
  });

  it("wants a template", () => {
    expect(openJdErrors(inputs({ template: "  \n" }))).toHaveProperty("template");
    expect(openJdErrors(inputs({}))).toEqual({});
  });

  it("names parameter rows that cannot be sent as meant", () => {
    const errors = openJdErrors(
      inputs({
        parameters: [
          { name: "", value: "orphan" },
          { name: "2fast", value: "1" },
          { name: "Frames", value: "1-3" },
          { name: "Frames", value: "4-6" },
        ],
      }),
    );
    expect(Object.keys(errors)).toEqual(["parameters"]);
    expect(errors.parameters).toContain('"orphan" has no parameter name');
    expect(errors.parameters).toContain('"2fast" is not a parameter name');
    expect(errors.parameters).toContain("Frames is given twice");
  });

  it("keeps the priority within 0 to 100", () => {
    for (const bad of ["-1", "101", "2.5", "high"]) {
      expect(openJdErrors(inputs({ priority: bad })), bad).toHaveProperty("priority");
    }
  });
});
