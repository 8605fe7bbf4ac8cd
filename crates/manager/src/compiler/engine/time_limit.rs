//! A sandbox's time limit: QuickJS polls an interrupt handler every few thousand operations,
//! and `true` from it raises an uncatchable error that ends the script.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rquickjs::{Context, Runtime};

use crate::compiler::SandboxLimits;

/// Memory the time limit may add to a script's limit so its uncatchable error can be made.
const INTERRUPT_HEADROOM_BYTES: usize = 1024 * 1024;

/// The sandbox's QuickJS runtime, for the interrupt handler (which QuickJS calls on the
/// thread running the script, inside the runtime's own lock).
struct RawRuntime(*mut rquickjs::qjs::JSRuntime);

// SAFETY: the pointer is only used by the interrupt handler, which QuickJS calls on the thread
// that holds the runtime while it runs a script.
unsafe impl Send for RawRuntime {}

impl RawRuntime {
    fn raise_memory_limit(&self, bytes: usize) {
        // SAFETY: see the type; setting the limit only writes a field of the runtime.
        unsafe { rquickjs::qjs::JS_SetMemoryLimit(self.0, bytes as _) }
    }
}

/// Installs the time limit on `runtime` (whose context is `context`), counting from now; the
/// flag it returns is set once the limit has passed.
pub(super) fn install(
    runtime: &Runtime,
    context: &Context,
    limits: SandboxLimits,
) -> Arc<AtomicBool> {
    let raw = RawRuntime(context.with(|ctx| {
        // SAFETY: the context is valid inside `with`; the runtime outlives the handler,
        // which it owns.
        unsafe { rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) }
    }));
    let timed_out = Arc::new(AtomicBool::new(false));
    // A time too large to add means no deadline at all.
    let deadline = Instant::now().checked_add(limits.time);
    let flag = Arc::clone(&timed_out);
    let memory_bytes = limits.memory_bytes;
    runtime.set_interrupt_handler(Some(Box::new(move || {
        let expired = deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if expired {
            flag.store(true, Ordering::Relaxed);
            if memory_bytes > 0 {
                // The uncatchable error is an object QuickJS must allocate. With the memory
                // limit used up (by cycles only the collector frees) it could not, threw a
                // catchable out-of-memory error instead, and a script catching errors in a
                // loop ran forever. Room for the error lets the time limit end it.
                raw.raise_memory_limit(memory_bytes.saturating_add(INTERRUPT_HEADROOM_BYTES));
            }
        }
        expired
    })));
    timed_out
}
