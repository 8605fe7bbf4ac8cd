// Castanet's job-type prelude: the JavaScript API that Flamenco 3.x job-type scripts expect
// (print, alert, author, path, process, frameChunker, frameCount, formatTimestampLocal,
// shellSplit). It runs before the script in every fresh sandbox.
//
// `native` carries the Rust helpers; they stay private to this closure. The returned object is
// what the Rust side calls to read JOB_TYPE, run compileJob and export the result.
(function (native) {
  "use strict";

  function describe(value) {
    if (typeof value === "string") return value;
    if (value instanceof Error) return String(value);
    if (value !== null && typeof value === "object") {
      try {
        return JSON.stringify(value);
      } catch (_) {
        return String(value); // e.g. tasks that depend on each other
      }
    }
    return String(value);
  }

  function logLine(args) {
    return Array.prototype.map.call(args, describe).join(" ");
  }

  function trimmedText(value) {
    return typeof value === "string" ? value.trim() : "";
  }

  function notText(what, value) {
    return new TypeError(`${what} must be a non-empty string, got ${describe(value)}`);
  }

  function requiredText(value, what) {
    const text = trimmedText(value);
    if (text === "") throw notText(what, value);
    return text;
  }

  class AuthoredCommand {
    constructor(name, parameters, totalStepCount) {
      this.name = requiredText(name, "author.Command(): the command name");
      if (parameters === undefined || parameters === null) parameters = {};
      if (typeof parameters !== "object" || Array.isArray(parameters)) {
        throw new TypeError(
          `author.Command("${this.name}"): parameters must be an object, got ${describe(parameters)}`,
        );
      }
      if (totalStepCount === undefined || totalStepCount === null) totalStepCount = 0;
      if (!Number.isInteger(totalStepCount) || totalStepCount < 0 || totalStepCount > 4294967295) {
        throw new TypeError(
          `author.Command("${this.name}"): the step count must be a whole number ≥ 0, got ${describe(totalStepCount)}`,
        );
      }
      this.parameters = parameters;
      this.totalStepCount = totalStepCount;
    }
  }

  // Tasks are identified by a number; a uuid string is made only for tasks whose `uuid` a script
  // reads (the rest get theirs in Rust, by number), which saves memory and time on jobs with many
  // tasks.
  const TASK_NUMBER = Symbol("task number");
  let nextTaskNumber = 0;
  const uuidsReadByScript = new Map();
  // Set once the Rust side has taken the uuids read so far (all others it gives out itself).
  let uuidsTaken = false;

  class AuthoredTask {
    constructor(name, type) {
      this[TASK_NUMBER] = nextTaskNumber++;
      this.name = name;
      this.type = type;
      this.priority = 50;
      this.commands = [];
      this.dependencies = [];
      this.frames = null;
    }

    // Declares the frames this task renders (frame-range notation, e.g. "1-10"): a job with a
    // target task duration regroups such tasks while they are queued, through compileChunk.
    setFrames(frames) {
      if (frames === undefined || frames === null) throw new TypeError(`task "${this.name}": setFrames(frames): frames is missing`);
      const text = String(frames);
      native.frameCount(text); // throws, naming what is wrong, on a bad range
      this.frames = text;
    }

    get uuid() {
      const number = this[TASK_NUMBER];
      let uuid = uuidsReadByScript.get(number);
      if (uuid === undefined) {
        if (uuidsTaken) throw new Error(`task "${this.name}": its uuid can only be read while compileJob runs`);
        uuid = native.newUuid();
        uuidsReadByScript.set(number, uuid);
      }
      return uuid;
    }

    addCommand(command) {
      if (!(command instanceof AuthoredCommand)) {
        throw new TypeError(
          `task "${this.name}": addCommand() expects a command made by author.Command(), got ${describe(command)}`,
        );
      }
      this.commands.push(command);
    }

    addDependency(task) {
      if (!(task instanceof AuthoredTask)) {
        throw new TypeError(
          `task "${this.name}": addDependency() expects a task made by author.Task(), got ${describe(task)}`,
        );
      }
      if (task === this) throw new Error(`task "${this.name}" cannot depend on itself`);
      this.dependencies.push(task);
    }
  }

  let job = null; // one job per sandbox

  class CompilingJob {
    constructor(fields) {
      Object.assign(this, fields);
      this.tasks = [];
    }

    // The command line of a task the manager runs after the job's last render task (for a job
    // with an approval gate: after the final pass). Split like a shell would, no shell runs it.
    onComplete(commandLine) {
      const text = requiredText(commandLine, "job.onComplete(): the command line");
      native.shellSplit(text); // throws, naming what is wrong, on unbalanced quotes
      this.onCompleteCommand = text;
    }

    addTask(task) {
      if (!(task instanceof AuthoredTask)) {
        throw new TypeError(`job.addTask() expects a task made by author.Task(), got ${describe(task)}`);
      }
      // Adding a task twice is reported when the tasks are exported (a Set here would cost
      // memory on every task).
      this.tasks.push(task);
    }
  }

  const globals = globalThis;
  globals.print = function print() {
    native.print(logLine(arguments));
  };
  globals.alert = function alert() {
    native.alert(logLine(arguments));
  };
  globals.frameChunker = function frameChunker(frames, chunkSize) {
    if (frames === undefined || frames === null) throw new TypeError("frameChunker(frames, chunkSize): frames is missing");
    return native.frameChunker(String(frames), Number(chunkSize));
  };
  globals.frameCount = function frameCount(frames) {
    if (frames === undefined || frames === null) throw new TypeError("frameCount(frames): frames is missing");
    return native.frameCount(String(frames));
  };
  globals.formatTimestampLocal = function formatTimestampLocal(time) {
    const millis = time instanceof Date ? time.getTime() : Number(time);
    if (!Number.isFinite(millis)) {
      throw new TypeError(`formatTimestampLocal() expects a Date, got ${describe(time)}`);
    }
    return native.formatTimestampLocal(millis);
  };
  globals.shellSplit = function shellSplit(text) {
    return native.shellSplit(String(text));
  };
  globals.author = {
    Task: function Task(name, type) {
      return new AuthoredTask(
        requiredText(name, "author.Task(): the task name"),
        requiredText(type, "author.Task(): the task type"),
      );
    },
    Command: function Command(name, parameters, totalStepCount) {
      return new AuthoredCommand(name, parameters, totalStepCount);
    },
  };
  globals.path = {
    join: (...parts) => native.pathJoin(parts.map(String)),
    dirname: (path) => native.pathDirname(String(path)),
    basename: (path) => native.pathBasename(String(path)),
    stem: (path) => native.pathStem(String(path)),
  };
  globals.process = {
    cwd: () => native.cwd(),
    platform: native.platform,
  };

  // A task as an array (quicker to build and to write as JSON; the Rust side reads the fields in
  // this order) with the same checks, in the same order, as ever; its commands last and in the form the manager stores, so the Rust side can store
  // their JSON text as it is. Plain indexed loops: this runs once per task of possibly huge jobs.
  function exportTask(task, index) {
    if (!(task instanceof AuthoredTask)) {
      throw new TypeError(`job.tasks[${index}] is not a task made by author.Task(): ${describe(task)}`);
    }
    // The error texts are built only when needed: this runs once per task of a big job.
    const name = trimmedText(task.name);
    if (name === "") throw notText(`job.tasks[${index}]: the task name`, task.name);
    const type = trimmedText(task.type);
    if (type === "") throw notText(`task "${name}": the task type`, task.type);
    const priority = task.priority;
    if (!Number.isInteger(priority) || priority < -2147483648 || priority > 2147483647) {
      throw new TypeError(`task "${name}": priority must be a whole number, got ${describe(priority)}`);
    }
    const commands = [];
    // A command without steps of its own counts as one step when it finishes.
    let steps = 0;
    for (let position = 0; position < task.commands.length; position++) {
      const command = task.commands[position];
      if (!(command instanceof AuthoredCommand)) {
        throw new TypeError(`task "${name}": command ${position} is not made by author.Command(): ${describe(command)}`);
      }
      // Checked again: a script may have changed the command since author.Command().
      const stepCount = command.totalStepCount;
      if (typeof command.name !== "string" || !Number.isInteger(stepCount) || stepCount < 0 || stepCount > 4294967295) {
        throw new TypeError(
          `task "${name}": command ${position} was changed into one that cannot be stored (name ${describe(command.name)}, step count ${describe(stepCount)})`,
        );
      }
      // As JSON would write it inside an array, so the stored command always has parameters.
      let parameters = command.parameters;
      if (parameters === undefined || typeof parameters === "function" || typeof parameters === "symbol") parameters = null;
      commands.push({ name: command.name, parameters: parameters, total_step_count: stepCount });
      steps += stepCount > 1 ? stepCount : 1;
    }
    // The dependencies themselves went out with the task graph (exportGraph).
    for (let position = 0; position < task.dependencies.length; position++) {
      const dependency = task.dependencies[position];
      if (!(dependency instanceof AuthoredTask)) {
        throw new TypeError(`task "${name}": a dependency is not a task made by author.Task(): ${describe(dependency)}`);
      }
    }
    const frames = task.frames === undefined || task.frames === null ? null : String(task.frames);
    return [task[TASK_NUMBER], name, type, priority, steps, commands, frames];
  }

  return {
    // JOB_TYPE and compileJob are the script's globals, looked up when these run.
    jobTypeJson() {
      return typeof JOB_TYPE === "undefined" ? undefined : JSON.stringify(JOB_TYPE);
    },

    runCompileJob(jobJson, createdMillis) {
      if (typeof compileJob !== "function") {
        throw new Error("the script does not define a compileJob(job) function");
      }
      const fields = JSON.parse(jobJson);
      fields.created = new Date(createdMillis);
      job = new CompilingJob(fields);
      compileJob(job);
      if (!Array.isArray(job.tasks)) throw new TypeError("job.tasks must stay an array");
      if (fields.targetTaskSeconds !== null && fields.targetTaskSeconds !== undefined) {
        if (typeof compileChunk !== "function") {
          throw new Error(
            "this job type does not support a target task duration: the script defines no compileChunk(job, frames) function",
          );
        }
        if (!job.tasks.some((task) => task instanceof AuthoredTask && task.frames !== null)) {
          throw new Error("a target task duration was asked for, but compileJob declared no task's frames (task.setFrames)");
        }
      }
      return job.tasks.length;
    },

    // For adaptive chunking: the task compileChunk(job, frames) authors for each frame range,
    // exported like compileJob's tasks. A chunk task stands alone: the manager gives it the
    // dependents of the tasks it replaces.
    runCompileChunks(jobJson, createdMillis, chunks) {
      if (typeof compileChunk !== "function") {
        throw new Error("the script defines no compileChunk(job, frames) function");
      }
      const fields = JSON.parse(jobJson);
      fields.created = new Date(createdMillis);
      job = new CompilingJob(fields);
      for (const frames of JSON.parse(chunks)) {
        const task = compileChunk(job, frames);
        if (!(task instanceof AuthoredTask)) {
          throw new TypeError(`compileChunk(job, "${frames}") must return a task made by author.Task(), got ${describe(task)}`);
        }
        if (task.dependencies.length > 0) {
          throw new Error(`compileChunk(job, "${frames}"): task "${task.name}" has dependencies; a chunk task stands alone`);
        }
        if (task.frames === null) task.frames = frames;
        job.tasks.push(task);
      }
      return job.tasks.length;
    },

    // For the approval gate: the final pass compileApproved(job) authors once the preview pass
    // was approved, exported like compileJob's tasks.
    runCompileApproved(jobJson, createdMillis) {
      if (typeof compileApproved !== "function") {
        throw new Error("the script defines no compileApproved(job) function");
      }
      const fields = JSON.parse(jobJson);
      fields.created = new Date(createdMillis);
      job = new CompilingJob(fields);
      compileApproved(job);
      if (!Array.isArray(job.tasks)) throw new TypeError("job.tasks must stay an array");
      return job.tasks.length;
    },

    exportJob() {
      const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
      if (!isObject(job.settings)) throw new TypeError(`job.settings must stay an object, got ${describe(job.settings)}`);
      if (!isObject(job.metadata)) throw new TypeError(`job.metadata must stay an object, got ${describe(job.metadata)}`);
      // The Rust side gives each task in the graph its uuid by number, except those whose uuid
      // the script read.
      uuidsTaken = true;
      return JSON.stringify({
        settings: job.settings,
        metadata: job.metadata,
        readUuids: Array.from(uuidsReadByScript),
        // A job type with a compileApproved function gets the approval gate.
        approvalGate: typeof compileApproved === "function",
        onComplete: typeof job.onCompleteCommand === "string" ? job.onCompleteCommand : null,
      });
    },

    // The task graph, read once compileJob has returned and before the tasks themselves, so the
    // dependencies can be stored while the tasks are exported: each task's number and, for tasks
    // with dependencies, [index, numbers of the tasks it depends on]. Null when anything is amiss
    // (then exportTasks throws at the culprit, in task order, as it always did).
    exportGraph() {
      try {
        const numbers = [];
        const dependencies = [];
        for (let index = 0; index < job.tasks.length; index++) {
          const task = job.tasks[index];
          if (!(task instanceof AuthoredTask)) return null;
          numbers.push(task[TASK_NUMBER]);
          const list = task.dependencies;
          if (list.length === 0) continue;
          const depended = [];
          for (let position = 0; position < list.length; position++) {
            const dependency = list[position];
            if (!(dependency instanceof AuthoredTask)) return null;
            depended.push(dependency[TASK_NUMBER]);
          }
          dependencies.push([index, depended]);
        }
        return JSON.stringify([numbers, dependencies]);
      } catch (_) {
        return null;
      }
    },

    // A batch at a time keeps the exported JSON small for jobs with many tasks.
    exportTasks(start, count) {
      const end = Math.min(start + count, job.tasks.length);
      const batch = [];
      for (let index = start; index < end; index++) batch.push(exportTask(job.tasks[index], index));
      return JSON.stringify(batch);
    },

    // The name of a task's dependency, for the error about one that was never added to the job.
    dependencyName(index, number) {
      const dependencies = job.tasks[index].dependencies;
      for (let position = 0; position < dependencies.length; position++) {
        if (dependencies[position][TASK_NUMBER] === number) return String(dependencies[position].name);
      }
      return "?";
    },
  };
});
