// Types of api-types.mjs for the type-checked tests that import it.
export declare const documentPath: string;
export declare const schemaPath: string;
export declare const options: { alphabetize: boolean; silent: boolean };
export declare function generateApiTypes(): Promise<string>;
