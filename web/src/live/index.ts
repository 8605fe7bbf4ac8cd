// The one event stream the whole dashboard shares.
import { onMounted, onUnmounted } from "vue";
import { withToken } from "../api/client";
import type { ChangeBatch } from "./changeBatcher";
import { EventStream } from "./eventStream";

export const events = new EventStream(() => withToken("/api/v3/events"));

/// Hands `onChanges` every batch of the shared stream while the calling component is mounted.
/// Its mount and unmount hooks are registered here: ones the component registers before
/// calling this run before the subscription and before the unsubscription.
export function useEvents(onChanges: (batch: ChangeBatch) => void) {
  let unsubscribe = () => {};
  onMounted(() => {
    unsubscribe = events.subscribe(onChanges);
  });
  onUnmounted(() => unsubscribe());
}
