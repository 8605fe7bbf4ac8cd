// The completion estimates a page shows, re-read when the page asks (on its own reloads)
// but at most every few seconds: the manager works them out over every unfinished job.
import { computed, onUnmounted, ref } from "vue";
import { api } from "../api/client";
import type { CompletionEstimates, JobCompletion } from "../api/types";
import { Throttle } from "./eta";

export function useEta(minGapMs = 5000) {
  const estimates = ref<CompletionEstimates | null>(null);
  const throttle = new Throttle(async () => {
    try {
      estimates.value = await api.eta();
    } catch {
      // Keep the last answer: an estimate is a hint, not worth an error notice.
    }
  }, minGapMs);
  onUnmounted(() => throttle.stop());
  const byJob = computed(
    () => new Map<string, JobCompletion>((estimates.value?.jobs ?? []).map((job) => [job.job_id, job])),
  );
  return { estimates, byJob, refresh: () => throttle.request() };
}
