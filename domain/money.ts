// Currencies and amounts. Amounts travel in minor units; operators search and read them in
// major units (25.00 EUR), so the conversion lives here once.

/** ISO 4217 codes this runtime knows; made on first use (the workflow sandbox loads this module once per saga). */
let currencies: Set<string> | undefined;

export function isKnownCurrency(code: string): boolean {
  currencies ??= new Set(Intl.supportedValuesOf('currency'));
  return currencies.has(code);
}

/** Each currency's digits, once looked up: building an Intl.NumberFormat costs a tenth of a millisecond. */
const digitsOf = new Map<string, number>();

/** Digits after the decimal point of a currency (EUR 2, JPY 0, KWD 3). */
export function minorUnitDigits(currency: string): number {
  let digits = digitsOf.get(currency);
  if (digits === undefined) {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    digitsOf.set(currency, digits);
  }
  return digits;
}

/** An amount in minor units as a decimal in major units (2500 EUR cents → 25): the unit of OrderTotal. */
export function toMajorUnits(amountMinor: number, currency: string): number {
  return amountMinor / 10 ** minorUnitDigits(currency);
}
