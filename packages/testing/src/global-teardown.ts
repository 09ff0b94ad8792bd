/** Stops the emulator the global setup started. */
export default async function globalTeardown(): Promise<void> {
  await globalThis.__SCS_EMULATOR__?.stop();
}
