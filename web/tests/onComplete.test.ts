import { describe, expect, it } from "vitest";
import { MAX_ON_COMPLETE_BYTES, onCompleteError } from "../src/forms/onComplete";

describe("the on-complete command line", () => {
  it("takes a program with quoted arguments, or nothing", () => {
    expect(onCompleteError("")).toBeUndefined();
    expect(onCompleteError("   ")).toBeUndefined();
    expect(onCompleteError(`rsync -a "/renders/my shot" 'review:/in box/'`)).toBeUndefined();
    expect(onCompleteError(`sh -c 'echo "$CASTANET_JOB_ID" > done.txt'`)).toBeUndefined();
    expect(onCompleteError(`echo it\\'s`)).toBeUndefined();
  });

  it("names what the manager would refuse", () => {
    expect(onCompleteError(`echo 'open`)).toMatch(/unterminated single quote/);
    expect(onCompleteError(`echo "open`)).toMatch(/unterminated double quote/);
    expect(onCompleteError(`echo \\`)).toMatch(/backslash/);
    expect(onCompleteError("echo a\nrm -rf /")).toMatch(/one line/);
    expect(onCompleteError("x".repeat(MAX_ON_COMPLETE_BYTES + 1))).toMatch(/longer than/);
  });
});
