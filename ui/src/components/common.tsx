import { Alert, Badge, Box, Flex, Heading, Link, Spinner, Text } from "@chakra-ui/react";
import type { ReactNode } from "react";
import { Link as RouterLink } from "react-router-dom";

export const NAV_BASE = "/plugin/failnotify";

export const UiLink = ({ to, children, testId }: { to: string; children: ReactNode; testId?: string }) => (
  <Link asChild color="fg.info" data-testid={testId}>
    <RouterLink to={to}>{children}</RouterLink>
  </Link>
);

export const Loading = () => (
  <Flex align="center" gap={2} py={4}>
    <Spinner size="sm" /> <Text>Loading…</Text>
  </Flex>
);

export const Notice = ({ status, title, children }: { status: "error" | "success" | "warning" | "info";
  title?: string; children?: ReactNode }) => (
  <Alert.Root status={status} my={3} data-testid={`fn-notice-${status}`}>
    <Alert.Indicator />
    <Alert.Content>
      {title ? <Alert.Title>{title}</Alert.Title> : null}
      {children ? <Alert.Description>{children}</Alert.Description> : null}
    </Alert.Content>
  </Alert.Root>
);

export const PageTitle = ({ children }: { children: ReactNode }) => (
  <Heading size="lg" mb={3}>{children}</Heading>
);

const STATE_COLORS: Record<string, string> = {
  sent: "green", pending: "blue", sending: "purple", failed: "red", cancelled: "gray",
  ok: "green", warn: "orange", bad: "red",
};

export const StateBadge = ({ state }: { state: string }) => (
  <Badge colorPalette={STATE_COLORS[state] ?? "gray"} data-state={state}>{state}</Badge>
);

export const Section = ({ title, children }: { title: string; children: ReactNode }) => (
  <Box borderWidth="1px" borderColor="border.emphasized" borderRadius="md" p={4} mb={4}>
    <Heading size="md" mb={3}>{title}</Heading>
    {children}
  </Box>
);
