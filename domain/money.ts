// Currencies and amounts. Amounts travel in minor units; operators search and read them in
// major units (25.00 EUR), so the conversion lives here once.

/** ISO 4217 codes this runtime knows. */
const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

export function isKnownCurrency(code: string): boolean {
  return CURRENCIES.has(code);
}

/** Digits after the decimal point of a currency (EUR 2, JPY 0, KWD 3). */
export function minorUnitDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** An amount in minor units as a decimal in major units (2500 EUR cents → 25): the unit of OrderTotal. */
export function toMajorUnits(amountMinor: number, currency: string): number {
  return amountMinor / 10 ** minorUnitDigits(currency);
}
