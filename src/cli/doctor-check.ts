/** One line of `duckcron doctor`; the cluster checks produce them too. */
export type CheckStatus = "ok" | "warn" | "problem";

export interface DoctorCheck {
  status: CheckStatus;
  /** What was checked, e.g. `secrets backend vault`, `catalog dir catalogs/acme`. */
  subject: string;
  message: string;
  /** How to fix a warn or problem. */
  fix?: string;
}
