"""The bench's decision panel: the kind, the replacement of an exchange, what policy proposes and why."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFrame, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, \
    QScrollArea, QVBoxLayout, QWidget

from console.deciding import Proposal
from console.money import Money
from console.workbench import kind_label
from console.risk import RiskRules
from db.models import DECISION_KINDS
from ui.style import key_label, value_label


def _money(minor: int, currency: str) -> str:
    return Money(minor, currency).format()


class DecisionPanel(QGroupBox):
    """The window connects its buttons and the kind box; ``draw`` shows a proposal (or why none)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Decision", parent)
        self.setFixedWidth(380)
        col = QVBoxLayout(self)
        col.setSpacing(6)
        kind_row = QHBoxLayout()
        kind_caption = QLabel("Kind [Ctrl+K]")
        self.kind_combo = QComboBox(objectName="kind")
        for kind in DECISION_KINDS:
            self.kind_combo.addItem(kind_label(kind), kind)
        self.kind_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        kind_caption.setBuddy(self.kind_combo)
        kind_row.addWidget(kind_caption)
        kind_row.addWidget(self.kind_combo, 1)
        col.addLayout(kind_row)
        # An exchange needs the replacement: scanned (from the shelf) or typed into this field.
        self.replacement_row = QWidget()
        replacement_layout = QHBoxLayout(self.replacement_row)
        replacement_layout.setContentsMargins(0, 0, 0, 0)
        replacement_caption = QLabel("Replacement [Ctrl+E]")
        self.replacement_field = QLineEdit(objectName="replacement")
        self.replacement_field.setPlaceholderText("scan or type the SKU")
        self.replacement_field.setMaxLength(40)
        replacement_caption.setBuddy(self.replacement_field)
        replacement_layout.addWidget(replacement_caption)
        replacement_layout.addWidget(self.replacement_field, 1)
        self.replacement_row.hide()
        col.addWidget(self.replacement_row)
        # The details scroll rather than squeeze when there are many reasons or a small screen.
        details = QWidget(objectName="details")
        inner = QVBoxLayout(details)
        inner.setContentsMargins(0, 0, 4, 0)
        inner.setSpacing(6)
        self.policy_kind_label = value_label(rich=True)
        self.amount_label = value_label(name="amount")
        self.amount_label.setWordWrap(False)
        self.paid_label = value_label(name="paid")
        self.deductions_label = value_label(name="deductions", rich=True)
        self.risk_label = value_label(name="risk")
        self.review_label = value_label(name="review", rich=True)
        self.proposal_note = value_label(name="proposalNote")
        for widget in (self.policy_kind_label, self.amount_label, self.paid_label, key_label("Deductions"),
                       self.deductions_label, self.risk_label, self.review_label, self.proposal_note):
            inner.addWidget(widget)
        inner.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(details)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        col.addWidget(scroll, 1)
        self.decide_button = QPushButton("Decide  [F12]", objectName="decide")
        self.decide_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.decide_button.setToolTip("Record the decision (F12 or Ctrl+Enter)")
        col.addWidget(self.decide_button)
        self.abandon_button = QPushButton("Put parcel down  [Esc]")
        self.abandon_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.abandon_button.setToolTip("Back to 'scan a parcel'; what was recorded stays recorded")
        col.addWidget(self.abandon_button)

    def draw(self, proposal: Proposal | None, note: str, rules: RiskRules) -> bool:
        """Show ``proposal`` (or ``note``, why there is none yet). True if the replacement row
        just appeared (an exchange was proposed or chosen): the keyboard goes there."""
        if proposal is None:
            self.kind_combo.setCurrentIndex(-1)
            self.replacement_row.hide()
            self.replacement_field.clear()
            for label in (self.policy_kind_label, self.paid_label, self.deductions_label, self.risk_label):
                label.setText("")
            self.amount_label.setText("—")
            self.review_label.hide()
            self.proposal_note.setText(note)
            self.proposal_note.setVisible(bool(note))
            return False
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(proposal.kind))
        was_visible = self.replacement_row.isVisible()
        self.replacement_row.setVisible(proposal.kind == "exchange")
        chosen = "" if proposal.kind == proposal.proposed_kind else " — changed by you"
        self.policy_kind_label.setText(f"Policy proposes: <b>{kind_label(proposal.proposed_kind)}</b>{chosen}")
        self.amount_label.setText(proposal.amount.format())
        quote, currency = proposal.quote, proposal.currency
        paid = f"paid {_money(quote.paid_minor, currency)}"
        if quote.shipping_refund_minor:
            paid += f" + shipping {_money(quote.shipping_refund_minor, currency)}"
        if quote.store_credit_bonus_minor:
            paid += f" · bonus {_money(quote.store_credit_bonus_minor, currency)}"
        self.paid_label.setText(paid)
        rows = "".join(f"<tr><td>{html.escape(d.label)}</td><td align='right' style='white-space:nowrap'>"
                       f"&minus;&nbsp;{_money(d.amount_minor, currency)}</td></tr>" for d in quote.deductions)
        self.deductions_label.setText(f"<table width='100%' cellspacing='0' cellpadding='1'>{rows}</table>"
                                      if rows else "none")
        risk = f"Risk score {proposal.risk_score} (supervisor review at {rules.review_at_or_above} or above)"
        if proposal.risk_outcome == "suggest_deny":
            risk = f"Risk score {proposal.risk_score}: at {rules.suggest_deny_at_or_above} or above, denial suggested"
        self.risk_label.setText(risk)
        if proposal.needs_review or proposal.signals:
            parts = ["<b>Goes to supervisor review:</b>"] if proposal.needs_review else []
            parts += [f"• {html.escape(r)}" for r in proposal.review_reasons]
            if proposal.signals:
                parts.append("<b>Risk signals:</b>")
                parts += [f"• <b>+{s.weight}</b> {html.escape(s.message)}" for s in proposal.signals]
            self.review_label.setText("<br>".join(parts))
            self.review_label.show()
        else:
            self.review_label.hide()
        self.proposal_note.setText(" ".join(quote.notes))
        self.proposal_note.setVisible(bool(quote.notes))
        return proposal.kind == "exchange" and not was_visible
