// The one event stream the whole dashboard shares.
import { withToken } from "../api/client";
import { EventStream } from "./eventStream";

export const events = new EventStream(() => withToken("/api/v3/events"));
